#!/usr/bin/env bash
# Benchmark: `lifecycle exporter` of a ~1 GiB app (the tree bench/import.sh generates) into a
# Cairn store, against `tar --sort=name | pigz -1 -p$CORES | sha256sum` of the same tree in the
# same run; then a warm export with nothing changed (layer fingerprints in the cache directory)
# as a fraction of the cold one. Medians of RUNS (default 3) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
CORES=$(nproc)
WORK=${BENCH_DIR:-$PWD/bench/out}
TREE=$WORK/tree
[ -f "$WORK/tree.complete" ] || RUNS=0 bench/import.sh >/dev/null   # generates the tree
for p in lifecycle cairn; do swift build -c release --product "$p" >/dev/null; done
swift build -c release --product launcher >/dev/null
BIN=$PWD/.build/release
E=$WORK/export
rm -rf "$E"; mkdir -p "$E/layers/config" "$E/rootfs/bin"
W_LOG=$WORK/export-cmd.log
trap 'rm -rf "$E"' EXIT
echo hi > "$E/rootfs/bin/motd"
"$BIN/cairn" import --quiet --store "$E/base-store" "$E/rootfs" run:latest >/dev/null
printf 'group = []\n' > "$E/layers/group.toml"
printf '[run-image]\nimage = "run:latest"\nreference = "run:latest"\n' > "$E/layers/analyzed.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\nbuildpack-id = "x/y"\ndirect = true\n' > "$E/layers/config/metadata.toml"
BYTES=$(du -sb "$TREE" | cut -f1)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {  # a failed command stops the whole benchmark
  local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W_LOG" || { echo "FAILED: $*" >&2; cat "$W_LOG" >&2; kill $$; exit 1; }
  e=$(date +%s.%N); echo "$e - $s" | bc -l
}
pipeline() { tar --sort=name -cf - -C "$TREE" . | pigz -1 -p"$CORES" | sha256sum; }
export_into() {  # store cache
  CNB_PLATFORM_API=0.15 "$BIN/lifecycle" exporter -store "$1" -cache-dir "$2" -app "$TREE" -layers "$E/layers" \
    -launcher "$BIN/launcher" -run "$E/none.toml" app:latest
}
cold() { rm -rf "$E/store" "$E/cache"; cp -a "$E/base-store" "$E/store"; export_into "$E/store" "$E/cache"; }
warm() { export_into "$E/store" "$E/cache"; }

tar -cf - -C "$TREE" . >/dev/null  # page cache
base=(); c=(); w=()
for _ in $(seq "$RUNS"); do
  base+=("$(timeit pipeline)")
  c+=("$(timeit cold)")
  w+=("$(timeit warm)")
done
b=$(printf '%s\n' "${base[@]}" | median); co=$(printf '%s\n' "${c[@]}" | median); wa=$(printf '%s\n' "${w[@]}" | median)
printf 'tree %d MiB, %d cores, %d runs (median)\n' $((BYTES >> 20)) "$CORES" "$RUNS"
printf 'pipeline (tar|pigz|sha256sum) %6.2f s\n' "$b"
printf 'cold export                   %6.2f s   throughput vs pipeline: %.2fx\n' "$co" "$(echo "$b / $co" | bc -l)"
printf 'warm export (no change)       %6.2f s   = %.1f%% of cold\n' "$wa" "$(echo "100 * $wa / $co" | bc -l)"
record export "cold, $((BYTES >> 20)) MiB app" "tar | pigz -1 | sha256sum" "$b" "$co"
record export "warm, nothing changed" "tar | pigz -1 | sha256sum" "$b" "$wa"
