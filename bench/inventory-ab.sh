#!/usr/bin/env bash
# The audit inventory's queries, this build against an earlier one, in one run (issue 39: "no
# query slower than 1.2x"): BEFORE=path/to/an/earlier/cairn-bench (build one from a worktree of
# the commit: `swift build -c release --product cairn-bench`). Each binary indexes its own
# IMAGES-image fleet (default 20,000; same generator) into SQLite and, when a PostgreSQL server is
# installed, into a throwaway cluster on loopback; then ROUNDS rounds (default 9) of
# `--queries-only --repeat REPEAT` (default 15), before and after alternately. Prints each
# query's median of the round medians for both, and after/before. DATABASES="sqlite postgres"
# (the default) or either.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to an earlier cairn-bench}"
IMAGES=${IMAGES:-20000}; ROUNDS=${ROUNDS:-9}; REPEAT=${REPEAT:-15}; DATABASES=${DATABASES:-sqlite postgres}
source bench/lib.sh
swift build -c release --product cairn-bench >/dev/null
AFTER=$PWD/.build/release/cairn-bench
W=/tmp/cairn-bench-inventory-ab-$$; rm -rf "$W"; mkdir -p "$W"
trap 'rm -rf "$W"' EXIT

# compare NAME DB_BEFORE DB_AFTER: index both fleets, alternate query rounds, print the table.
compare() {
  echo "== $1: indexing $IMAGES images with each binary"
  "$BEFORE" inventory --images "$IMAGES" --database "$2" 2>/dev/null | grep -E '^index:' | sed 's/^/before /'
  "$AFTER" inventory --images "$IMAGES" --database "$3" 2>/dev/null | grep -E '^index:' | sed 's/^/after  /'
  : > "$W/$1.rows"
  for round in $(seq "$ROUNDS"); do
    for side in before after; do
      bin=$BEFORE; db=$2; [ "$side" = after ] && { bin=$AFTER; db=$3; }
      "$bin" inventory --queries-only --repeat "$REPEAT" --database "$db" 2>/dev/null |
        awk -v side="$side" -F'  +' '/ ms /{ label=$2; ms=$3; sub(/ ms$/, "", ms); rows=$4; sub(/ rows$/, "", rows); print side "\t" label "\t" ms "\t" rows }' >> "$W/$1.rows"
    done
  done
  python3 - "$W/$1.rows" "$1" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
queries = list(dict.fromkeys(r[1] for r in rows))
print(f"| query ({sys.argv[2]}) | before ms | after ms | after/before | rows before/after |")
print("|---|---:|---:|---:|---|")
for q in queries:
    b = [float(r[2]) for r in rows if r[0] == "before" and r[1] == q]
    a = [float(r[2]) for r in rows if r[0] == "after" and r[1] == q]
    rb = {r[3] for r in rows if r[0] == "before" and r[1] == q}; ra = {r[3] for r in rows if r[0] == "after" and r[1] == q}
    mb, ma = statistics.median(b), statistics.median(a)
    print(f"| {q} | {mb:.1f} | {ma:.1f} | {ma / mb:.2f}x | {'/'.join(sorted(rb))} / {'/'.join(sorted(ra))} |")
PY
}

[[ " $DATABASES " == *" sqlite "* ]] && compare SQLite "$W/before.db" "$W/after.db"
if [[ " $DATABASES " == *" postgres "* ]] && pg_start "$W/pg"; then
  trap 'pg_stop; rm -rf "$W"' EXIT
  for db in before after; do psql -q -h 127.0.0.1 -p "$PG_PORT" -U cairn -d postgres -c "CREATE DATABASE $db"; done
  compare PostgreSQL "postgres://cairn@127.0.0.1:$PG_PORT/before" "postgres://cairn@127.0.0.1:$PG_PORT/after"
fi
