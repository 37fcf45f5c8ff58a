#!/usr/bin/env bash
# Benchmark: `cairn import` of a generated ~1 GiB tree against the shell pipeline doing the
# same work, measured in the same run (the machines are shared and noisy: compare ratios).
#   gzip: tar --sort=name | pigz -1 -p$CORES | sha256sum (level 1 on both sides, Cairn's default)   vs  cairn import --compression gzip
#   zstd: tar --sort=name | zstd -T$CORES -3 | sha256sum vs cairn import --compression zstd
# Each command runs RUNS times (default 3) after one warm-up; the median wall time is reported.
# Cairn also hashes the uncompressed tar (diffID) and writes + fsyncs the blob; the pipeline
# hashes only its output and writes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
CORES=$(nproc)
WORK=${BENCH_DIR:-$PWD/bench/out}
TREE=$WORK/tree
scripts/deps >/dev/null
bench_cairn

if [ ! -f "$WORK/tree.complete" ]; then
  echo "Generating the tree in $TREE ..."
  rm -rf "$TREE"; mkdir -p "$TREE/random" "$TREE/text" "$TREE/small"
  for i in 1 2 3 4; do head -c $((128 << 20)) /dev/urandom > "$TREE/random/blob$i.bin"; done
  python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [w.strip() for w in "the quick brown fox jumps over lazy dog request response error warning info debug user \
session cache layer image build export detect restore analyze launch process buildpack stack registry digest \
manifest config".split()]
for i in range(3):  # 3 x 100 MiB of log-like text
    with open(f"{root}/text/log{i}.txt", "w") as f:
        written = 0
        while written < 100 << 20:
            line = "2026-11-21T%02d:%02d:%02d.%03dZ %s id=%d %s\n" % (rng.randrange(24), rng.randrange(60), rng.randrange(60),
                   rng.randrange(1000), rng.choice(["INFO", "WARN", "DEBUG", "ERROR"]), rng.randrange(10**6),
                   " ".join(rng.choice(words) for _ in range(rng.randrange(4, 16))))
            f.write(line)
            written += len(line)
for d in range(200):  # 20,000 small files, 1-16 KiB, half text, half binary
    os.makedirs(f"{root}/small/d{d:03}", exist_ok=True)
    for n in range(100):
        size = rng.randrange(1024, 16384)
        path = f"{root}/small/d{d:03}/f{n:03}"
        if n % 2:
            with open(path, "wb") as f: f.write(os.urandom(size))
        else:
            with open(path, "w") as f: f.write((" ".join(rng.choice(words) for _ in range(size // 6)))[:size])
PY
  touch "$WORK/tree.complete"
fi
BYTES=$(du -sb "$TREE" | cut -f1)
FILES=$(find "$TREE" -type f | wc -l)
echo "Tree: $((BYTES >> 20)) MiB in $FILES files; $CORES cores; $RUNS runs each (median)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {  # timeit CMD... -> seconds (wall)
  local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
pipeline_gzip() { tar --sort=name -cf - -C "$TREE" . | pigz -1 -p"$CORES" | sha256sum; }
pipeline_zstd() { tar --sort=name -cf - -C "$TREE" . | zstd -q -T"$CORES" -3 | sha256sum; }
cairn_import() {  # compression
  rm -rf "$WORK/store"; "$CAIRN" import --quiet --store "$WORK/store" --compression "$1" "$TREE" bench:"$1"
}
command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null 2>&1 || true; }
trap 'rm -rf "$WORK/store"' EXIT
tar -cf - -C "$TREE" . >/dev/null  # warm the page cache

report() {  # label baseline-label baseline-cmd cairn-cmd
  local label=$1 baseline=$2; shift 2
  local base=() ours=()
  timeit "$1" >/dev/null; timeit "$2" "$3" >/dev/null  # warm-up
  for _ in $(seq "$RUNS"); do
    base+=("$(timeit "$1")")
    ours+=("$(timeit "$2" "$3")")
  done
  local b o
  b=$(printf '%s\n' "${base[@]}" | median); o=$(printf '%s\n' "${ours[@]}" | median)
  printf '%-5s pipeline %6.2f s (%6.1f MB/s)   cairn %6.2f s (%6.1f MB/s)   cairn/pipeline throughput: %.2fx\n' \
    "$label" "$b" "$(echo "$BYTES / $b / 1000000" | bc -l)" "$o" "$(echo "$BYTES / $o / 1000000" | bc -l)" "$(echo "$b / $o" | bc -l)"
  record import "$label, $((BYTES >> 20)) MiB tree" "$baseline" "$b" "$o"
}
report gzip "tar | pigz -1 | sha256sum" pipeline_gzip cairn_import gzip
report zstd "tar | zstd -3 | sha256sum" pipeline_zstd cairn_import zstd
# Memory: the layer is streamed, so cairn's peak RSS should not grow with the tree.
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
for c in gzip zstd; do
  rm -rf "$WORK/store"
  /usr/bin/time -f "%M" -o "$WORK/rss" "$CAIRN" import --quiet --store "$WORK/store" --compression "$c" "$TREE" bench:"$c" >/dev/null
  printf '%-5s cairn import peak RSS %d MB\n' "$c" "$(( $(cat "$WORK/rss") / 1024 ))"
done
rm -f "$WORK/rss"
