#!/usr/bin/env bash
# Benchmark: `lifecycle exporter` of a ~1 GiB app (the tree bench/import.sh generates) into a
# Cairn store, against `tar --sort=name | pigz -1 -p$CORES | sha256sum` of the same tree in the
# same run; then a warm export with nothing changed (layer fingerprints in the cache directory)
# as a fraction of the cold one; then the same tree as three launch layers of one buildpack
# (random, text, small files), written one after another (CAIRN_LAYER_WRITERS=1, the baseline)
# and by one writer per core (CAIRN_LAYER_WRITERS=$CORES; the default is one per two cores).
# Medians of RUNS (default 3) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
CORES=$(nproc)
WORK=${BENCH_DIR:-$PWD/bench/out}
TREE=$WORK/tree
[ -f "$WORK/tree.complete" ] || RUNS=0 bench/import.sh >/dev/null   # generates the tree
# This tree's release lifecycle, launcher and cairn, or (bench/regression.sh) the static
# lifecycle and launcher of $BENCH_LIFECYCLE_DIR and $BENCH_CAIRN, linked into one directory.
BIN_TEMP=
if [ -n "${BENCH_LIFECYCLE_DIR:-}${BENCH_CAIRN:-}" ]; then
  bench_lifecycle_dir; bench_cairn
  BIN=$(mktemp -d /tmp/cairn-export-bin.XXXXXX); BIN_TEMP=$BIN
  for tool in lifecycle launcher; do ln -s "$LIFECYCLE_DIR/$tool" "$BIN/$tool"; done
  ln -s "$CAIRN" "$BIN/cairn"
else
  for p in lifecycle cairn launcher; do swift build -c release --product "$p" >/dev/null; done
  BIN=$PWD/.build/release
fi
E=$WORK/export
rm -rf "$E"; mkdir -p "$E/layers/config" "$E/rootfs/bin"
W_LOG=$WORK/export-cmd.log
trap 'rm -rf "$E" ${BIN_TEMP:+"$BIN_TEMP"}' EXIT
echo hi > "$E/rootfs/bin/motd"
"$BIN/cairn" import --quiet --store "$E/base-store" "$E/rootfs" run:latest >/dev/null
printf 'group = []\n' > "$E/layers/group.toml"
printf '[run-image]\nimage = "run:latest"\nreference = "run:latest"\n' > "$E/layers/analyzed.toml"
printf '[[processes]]\ntype = "web"\ncommand = ["true"]\nbuildpack-id = "x/y"\ndirect = true\n' > "$E/layers/config/metadata.toml"
BYTES=$(du -sb "$TREE" | cut -f1)
M=$E/multi
mkdir -p "$M/layers/config" "$M/layers/bench_parts" "$M/app"
for part in random text small; do
  cp -al "$TREE/$part" "$M/layers/bench_parts/$part"
  printf '[types]\nlaunch = true\n' > "$M/layers/bench_parts/$part.toml"
done
printf '[[group]]\nid = "bench/parts"\nversion = "1.0.0"\napi = "0.10"\n' > "$M/layers/group.toml"
cp "$E/layers/analyzed.toml" "$M/layers/"; cp "$E/layers/config/metadata.toml" "$M/layers/config/"
echo hi > "$M/app/index.html"

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
multi() {  # writers
  rm -rf "$M/store" "$M/cache"; cp -a "$E/base-store" "$M/store"
  CAIRN_LAYER_WRITERS=$1 CNB_PLATFORM_API=0.15 "$BIN/lifecycle" exporter -store "$M/store" -cache-dir "$M/cache" -app "$M/app" \
    -layers "$M/layers" -launcher "$BIN/launcher" -run "$E/none.toml" parts:latest
}

tar -cf - -C "$TREE" . >/dev/null  # page cache
base=(); c=(); w=(); one=(); many=()
for _ in $(seq "$RUNS"); do
  base+=("$(timeit pipeline)")
  c+=("$(timeit cold)")
  w+=("$(timeit warm)")
  one+=("$(timeit multi 1)")
  many+=("$(timeit multi "$CORES")")
done
b=$(printf '%s\n' "${base[@]}" | median); co=$(printf '%s\n' "${c[@]}" | median); wa=$(printf '%s\n' "${w[@]}" | median)
o1=$(printf '%s\n' "${one[@]}" | median); on=$(printf '%s\n' "${many[@]}" | median)
printf 'tree %d MiB, %d cores, %d runs (median)\n' $((BYTES >> 20)) "$CORES" "$RUNS"
printf 'pipeline (tar|pigz|sha256sum) %6.2f s\n' "$b"
printf 'cold export                   %6.2f s   throughput vs pipeline: %.2fx\n' "$co" "$(echo "$b / $co" | bc -l)"
printf 'warm export (no change)       %6.2f s   = %.1f%% of cold\n' "$wa" "$(echo "100 * $wa / $co" | bc -l)"
printf '3 layers, one at a time       %6.2f s\n' "$o1"
printf '3 layers, %d at once           %6.2f s   = %.2fx faster\n' "$CORES" "$on" "$(echo "$o1 / $on" | bc -l)"
record export "cold, $((BYTES >> 20)) MiB app" "tar | pigz -1 | sha256sum" "$b" "$co"
record export "warm, nothing changed" "tar | pigz -1 | sha256sum" "$b" "$wa"
record export "3 new layers at once ($CORES writers)" "same layers one at a time" "$o1" "$on"
