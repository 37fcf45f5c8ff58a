#!/usr/bin/env bash
# Runs every benchmark, each against its baseline measured in the same run, and prints one table
# of ratios (baseline time / Cairn time: above 1 Cairn is faster, below 1 slower), so that a
# regression shows at a glance. The table also goes to bench/RESULTS.md (linked from the README).
#   bench/all.sh                 all of them (about 30-40 minutes on 2 cores)
#   bench/all.sh import rebase   some of them
# RUNS (default 3) is passed on: every figure is a median of RUNS runs.
set -euo pipefail
cd "$(dirname "$0")/.."
benchmarks=("$@")
[ ${#benchmarks[@]} -gt 0 ] || benchmarks=(import export push rebase launcher detect build trust)
export RUNS=${RUNS:-3}
BENCH_TABLE=$(mktemp /tmp/cairn-bench-table.XXXXXX)
export BENCH_TABLE
trap 'rm -f "$BENCH_TABLE"' EXIT
failed=()
for b in "${benchmarks[@]}"; do
  echo "== bench/$b.sh"
  if ! "bench/$b.sh" 2>&1 | sed 's/^/   /'; then failed+=("$b"); fi
done
python3 - "$BENCH_TABLE" "$RUNS" "${failed[*]:-}" <<'PY' | tee bench/RESULTS.md.tmp
import datetime, os, subprocess, sys
table, runs, failed = sys.argv[1], sys.argv[2], sys.argv[3].split()
rows = [l.rstrip("\n").split("\t") for l in open(table) if l.strip()]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"# Benchmarks\n\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}, "
      f"{os.cpu_count()} cores, medians of {runs} runs. Ratio = baseline time / Cairn time, both measured "
      "in the same run (above 1: Cairn is faster).\n")
print("| benchmark | measure | baseline | baseline s | Cairn s | ratio |")
print("|---|---|---|---:|---:|---:|")
for bench, measure, baseline, b, c in rows:
    b, c = float(b), float(c)
    cell = lambda t: t.replace("|", "\\|")
    print(f"| {cell(bench)} | {cell(measure)} | {cell(baseline)} | {b:.4g} | {c:.4g} | {b / c:.2f}x |")
if failed:
    print(f"\nFailed (no rows): {', '.join(failed)}")
PY
# The table replaces the file's first section; the sections other benchmarks wrote stay.
python3 - <<'PY'
new = open("bench/RESULTS.md.tmp").read().rstrip() + "\n"
try:
    old = open("bench/RESULTS.md").read()
except FileNotFoundError:
    old = ""
rest = old[old.index("\n## ") + 1:] if "\n## " in old else ""
open("bench/RESULTS.md.tmp", "w").write(new + ("\n" + rest if rest else ""))
PY
mv bench/RESULTS.md.tmp bench/RESULTS.md
[ ${#failed[@]} -eq 0 ]
