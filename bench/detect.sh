#!/usr/bin/env bash
# Benchmark: detection of an order with 30 groups x 5 buildpacks whose bin/detect each sleep 0.2 s.
# Groups 1-29 fail on their last buildpack, group 30 passes, so all 150 detects must run.
# Baseline (same run): the same 150 bin/detect executed one after another by a shell loop.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
# The release lifecycle of this tree, or the static one of $BENCH_LIFECYCLE_DIR (bench/regression.sh).
if [ -n "${BENCH_LIFECYCLE_DIR:-}" ]; then LIFECYCLE=$BENCH_LIFECYCLE_DIR/lifecycle; else
  swift build -c release --product lifecycle >/dev/null
  LIFECYCLE=$PWD/.build/release/lifecycle
fi
W=$(mktemp -d /tmp/cairn-detect-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/app" "$W/layers" "$W/platform" "$W/buildpacks"
chmod -R 777 "$W"
order="$W/order.toml"; : > "$order"
for g in $(seq 1 30); do
  echo "[[order]]" >> "$order"
  for b in $(seq 1 5); do
    id="g$g-b$b"; d="$W/buildpacks/$id/1.0.0"; mkdir -p "$d/bin"
    printf 'api = "0.12"\n[buildpack]\nid = "%s"\nversion = "1.0.0"\n' "$id" > "$d/buildpack.toml"
    status=0; { [ "$b" = 5 ] && [ "$g" != 30 ]; } && status=100
    printf '#!/bin/sh\nsleep 0.2\nexit %s\n' "$status" > "$d/bin/detect"
    printf '#!/bin/sh\nexit 0\n' > "$d/bin/build"
    chmod +x "$d/bin/detect" "$d/bin/build"
    printf '[[order.group]]\nid = "%s"\nversion = "1.0.0"\n' "$id" >> "$order"
  done
done
now() { date +%s.%N; }
s=$(now)
for d in "$W"/buildpacks/*/1.0.0; do (cd "$W/app" && "$d/bin/detect" >/dev/null) || true; done
serial=$(echo "$(now) - $s" | bc -l)
export CNB_PLATFORM_API=0.15 CNB_APP_DIR="$W/app" CNB_LAYERS_DIR="$W/layers" CNB_PLATFORM_DIR="$W/platform" \
  CNB_BUILDPACKS_DIR="$W/buildpacks" CNB_ORDER_PATH="$order" CNB_USER_ID=1000 CNB_GROUP_ID=1000
s=$(now)
"$LIFECYCLE" detector >/dev/null
ours=$(echo "$(now) - $s" | bc -l)
grep -q 'id = "g30-b1"' "$W/layers/group.toml"
printf '150 detects x 0.2 s: serial loop %.2f s, lifecycle detector %.2f s (%.1fx faster, %d cores)\n' \
  "$serial" "$ours" "$(echo "$serial / $ours" | bc -l)" "$(nproc)"
record detect "150 detects x 0.2 s" "serial shell loop" "$serial" "$ours"
