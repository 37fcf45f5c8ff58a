#!/usr/bin/env bash
# Regression check (issue 42): the benchmarks of bench/all.sh, each run twice in one run, first
# with a previous build's binaries and then with this tree's, and one table of Cairn's time per
# row: previous / this (above 1: this build is faster). Goal: no row below 1/1.1 = 0.91.
#   bench/regression.sh PREVIOUS_CAIRN PREVIOUS_LIFECYCLE_DIR [benchmark...]
# ROUNDS=N runs each benchmark N times per side, alternating (old new old new …); each row is
# then the median over the rounds of each side's medians.
# PREVIOUS_CAIRN: a release `cairn`; PREVIOUS_LIFECYCLE_DIR: a directory with its static
# `lifecycle` and `launcher` (scripts/build-static's .build/static-bin, copied aside before the
# change). This tree's side is built as bench/all.sh builds it and copied aside the same way, so
# both sides run the same kinds of binaries (detect and export use the static lifecycle here,
# where bench/all.sh uses a release build). Each benchmark's own baseline (a shell pipeline,
# skopeo, buildah, …) is measured on both sides; the "drift" column is its time on this side /
# on the previous side (near 1: the machine was equally fast for both).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,14p' "$0"; exit 2; }
old_cairn=$(realpath "$1"); old_dir=$(realpath "$2"); shift 2
[ -x "$old_cairn" ] && [ -x "$old_dir/lifecycle" ] && [ -x "$old_dir/launcher" ] || {
  echo "bench/regression.sh: need an executable cairn and a directory with lifecycle and launcher" >&2; exit 2; }
benchmarks=("$@")
[ ${#benchmarks[@]} -gt 0 ] || benchmarks=(import export push rebase launcher detect build trust)
export RUNS=${RUNS:-3}
T=$(mktemp -d /tmp/cairn-regression.XXXXXX)
trap 'rm -rf "$T"' EXIT
scripts/build-static >/dev/null
swift build -c release --product cairn >/dev/null
mkdir -p "$T/new"
cp .build/release/cairn .build/static-bin/lifecycle .build/static-bin/launcher "$T/new/"
failed=()
for b in "${benchmarks[@]}"; do
  for side in $(for _ in $(seq "${ROUNDS:-1}"); do echo old new; done); do
    if [ $side = old ]; then c=$old_cairn; d=$old_dir; else c=$T/new/cairn; d=$T/new; fi
    echo "== bench/$b.sh ($side)"
    if ! BENCH_TABLE=$T/$side.tsv BENCH_CAIRN=$c BENCH_LIFECYCLE_DIR=$d "bench/$b.sh" 2>&1 | sed 's/^/   /'; then failed+=("$b/$side"); fi
  done
done
touch "$T/old.tsv" "$T/new.tsv"
python3 - "$T/old.tsv" "$T/new.tsv" "$RUNS" "${failed[*]:-}" <<'PY'
import datetime, subprocess, sys
def rows(path):
    seen = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 5: seen.setdefault((f[0], f[1]), []).append((float(f[3]), float(f[4])))
    median = lambda xs: sorted(xs)[(len(xs) - 1) // 2]
    return {k: (None, median([b for b, _ in v]), median([c for _, c in v])) for k, v in seen.items()}
old, new, runs, failed = rows(sys.argv[1]), rows(sys.argv[2]), sys.argv[3], sys.argv[4].split()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, this tree at {commit} against the previous binaries, "
      f"medians of {runs} runs. Ratio = previous Cairn time / this Cairn time (above 1: faster now; goal: none below 0.91).\n")
print("| benchmark | measure | previous s | this s | ratio | baseline drift |")
print("|---|---|---:|---:|---:|---:|")
worst = None
for key in old:
    if key not in new: continue
    _, ob, oc = old[key]; _, nb, nc = new[key]
    ratio = oc / nc
    worst = ratio if worst is None else min(worst, ratio)
    cell = lambda t: t.replace("|", "\\|")
    print(f"| {cell(key[0])} | {cell(key[1])} | {oc:.4g} | {nc:.4g} | {ratio:.2f}x | {nb / ob:.2f} |")
missing = sorted(set(old) ^ set(new))
if missing: print(f"\nRows on one side only: {missing}")
if failed: print(f"\nFailed: {', '.join(failed)}")
if worst is not None: print(f"\nWorst row: {worst:.2f}x ({'within' if worst >= 1 / 1.1 else 'OUTSIDE'} the 1.1x budget)")
PY
[ ${#failed[@]} -eq 0 ]
