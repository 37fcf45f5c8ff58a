#!/usr/bin/env bash
# Benchmark: after a run image update, `cairn rebase` of an app image against rebuilding it with
# `cairn build` (warm cache: what a platform does without rebase), in the same run. The app carries
# SIZE_MB of incompressible files, so a rebuild has real layers to write; a rebase writes only a
# config and a manifest. Also: rebasing a fleet of FLEET images in one `cairn rebase`. Medians of RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-256}
FLEET=${FLEET:-50}
bench_lifecycle_dir
bench_cairn
export CAIRN_LIFECYCLE_BIN=$LIFECYCLE_DIR
W=/tmp/cairn-bench-rebase-$$; rm -rf "$W"; mkdir -p "$W"
export CAIRN_HOME=$W/home
trap 'rm -rf "$W"' EXIT
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
"$CAIRN" builder create b --config examples/builder.toml --quiet >/dev/null
cp -a examples/apps/static-site "$W/app"
head -c $((SIZE_MB << 20)) /dev/urandom > "$W/app/public/big.bin"
"$CAIRN" build site --path "$W/app" --builder b --quiet >/dev/null
for i in $(seq "$FLEET"); do "$CAIRN" build "fleet-$i" --path examples/apps/hello-procfile --builder b --quiet >/dev/null 2>&1; done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {
  local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W/cmd.log" || { echo "FAILED: $*" >&2; cat "$W/cmd.log" >&2; kill $$; exit 1; }
  e=$(date +%s.%N); echo "$e - $s" | bc -l
}
patch_run_image() {  # a new run image under the name the apps record
  mkdir -p "$W/patch/etc"; echo "$RANDOM$RANDOM" > "$W/patch/etc/cairn-patch"
  "$CAIRN" import "$W/patch" tiny/run:latest --base tiny/run:latest >/dev/null
}
fleet=(); for i in $(seq "$FLEET"); do fleet+=("fleet-$i"); done
rb=(); bd=(); fl=()
for _ in $(seq "$RUNS"); do
  patch_run_image; rb+=("$(timeit "$CAIRN" rebase site)")
  patch_run_image; bd+=("$(timeit "$CAIRN" build site --path "$W/app" --builder b --quiet)")
  patch_run_image; fl+=("$(timeit "$CAIRN" rebase "${fleet[@]}")")
done
m() { printf '%s\n' "$@" | median; }
printf 'app image with %d MiB of app files, after a run image update:\n' "$SIZE_MB"
printf '  cairn rebase %6.3f s   cairn build (warm) %6.2f s   rebuild/rebase time %.0fx\n' "$(m "${rb[@]}")" "$(m "${bd[@]}")" "$(echo "$(m "${bd[@]}") / $(m "${rb[@]}")" | bc -l)"
printf 'fleet: cairn rebase of %d images %6.2f s (%.1f ms per image)\n' "$FLEET" "$(m "${fl[@]}")" "$(echo "$(m "${fl[@]}") * 1000 / $FLEET" | bc -l)"
record rebase "after a run image update, $SIZE_MB MiB app" "cairn build (warm cache)" "$(m "${bd[@]}")" "$(m "${rb[@]}")"
