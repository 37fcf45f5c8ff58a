#!/usr/bin/env bash
# Benchmark: the audit inventory at fleet scale. `cairn-bench inventory` indexes a synthetic,
# deterministic fleet (IMAGES app images, default 100,000; 1,000 run image versions, 200
# buildpacks, 2,000 package names, 300 packages per image, 5,000 OSV records) through the real
# write path and times each query (medians of 5), into SQLite and into a throwaway PostgreSQL
# cluster on loopback (initdb in the work directory, stopped on exit). The baseline in the same
# run is the whole-fleet vulns join (the same join order, rows counted, not fetched) in the
# sqlite3 shell over the same database.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-100000}
source bench/lib.sh
bench_setup inventory
swift build -c release --product cairn-bench >/dev/null
BENCH=$PWD/.build/release/cairn-bench
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null

echo "== SQLite"
"$BENCH" inventory --images "$IMAGES" --database "$W/audit.db" 2>/dev/null
join="SELECT COUNT(*) FROM vulnerable v JOIN package p ON p.id = v.package_id JOIN image_package ip ON ip.package_id = v.package_id JOIN image_name n ON n.image_id = ip.image_id WHERE v.release = '';
SELECT COUNT(*) FROM vulnerable v CROSS JOIN run_image_package rp CROSS JOIN run_image r CROSS JOIN image i CROSS JOIN image_name n WHERE rp.package_id = v.package_id AND r.id = rp.run_image_id AND i.run_image_id = r.id AND n.image_id = i.id AND (v.release = '' OR r.distro_version = v.release);"
raw=(); for _ in 1 2 3; do raw+=("$(timeit sqlite3 "$W/audit.db" "$join")"); done
printf 'baseline: the whole-fleet vulns join counted by the sqlite3 shell: %.1f ms\n' "$(echo "$(m "${raw[@]}") * 1000" | bc -l)"

if pg_start "$W/pg"; then
  echo "== PostgreSQL ($PG_BIN)"
  trap 'pg_stop; rm -rf "$W"' EXIT
  psql -q -h 127.0.0.1 -p "$PG_PORT" -U cairn -d postgres -c "CREATE DATABASE bench"
  "$BENCH" inventory --images "$IMAGES" --database "postgres://cairn@127.0.0.1:$PG_PORT/bench" 2>/dev/null
fi
