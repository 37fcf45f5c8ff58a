#!/usr/bin/env bash
# Benchmark: push a ~1 GiB image (the tree of bench/import.sh as one gzip layer) from an OCI
# layout to a loopback docker-registry: `cairn push` vs `skopeo copy`, same run. Every push goes
# to a fresh, empty registry so nothing is skipped. Reports median wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
WORK=${BENCH_DIR:-$PWD/bench/out}
scripts/deps >/dev/null
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
bench_cairn
[ -f "$WORK/tree.complete" ] || { echo "run bench/import.sh first (it generates the tree)"; exit 1; }
STORE=$WORK/push-store
if [ ! -f "$STORE/index.json" ] || ! "$CAIRN" inspect --store "$STORE" big:1 >/dev/null 2>&1; then
  "$CAIRN" import --quiet --store "$STORE" "$WORK/tree" big:1 >/dev/null
fi
SIZE=$("$CAIRN" inspect --store "$STORE" --format json big:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
REG=$(mktemp -d /tmp/cairn-push-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$REG"; }
trap cleanup EXIT
start_registry() {
  [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  rm -rf "$REG/data"; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$REG" "$port" > "$REG/config.yml"
  docker-registry serve "$REG/config.yml" >/dev/null 2>&1 & pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry did not start"; exit 1
}
measure() {  # label cmd... -> "seconds maxrss_kb"
  /usr/bin/time -f "%e %M" -o "$REG/time" "$@" >/dev/null 2>"$REG/err" || { cat "$REG/err"; exit 1; }
  cat "$REG/time"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
c_t=(); c_m=(); s_t=(); s_m=()
for _ in $(seq "$RUNS"); do
  start_registry
  read -r t m < <(measure "$CAIRN" push --quiet --store "$STORE" --insecure-registry "127.0.0.1:$port" big:1 "127.0.0.1:$port/bench/big:1")
  c_t+=("$t"); c_m+=("$m")
  start_registry
  read -r t m < <(measure skopeo copy -q --dest-tls-verify=false "oci:$STORE:big:1" "docker://127.0.0.1:$port/bench/big:1")
  s_t+=("$t"); s_m+=("$m")
done
ct=$(printf '%s\n' "${c_t[@]}" | median); cm=$(printf '%s\n' "${c_m[@]}" | median)
st=$(printf '%s\n' "${s_t[@]}" | median); sm=$(printf '%s\n' "${s_m[@]}" | median)
printf 'image %d MB; %d runs (median)\n' "$((SIZE / 1000000))" "$RUNS"
printf 'cairn push   %6.2f s (%6.1f MB/s)  peak RSS %4d MB\n' "$ct" "$(echo "$SIZE / $ct / 1000000" | bc -l)" "$((cm / 1024))"
printf 'skopeo copy  %6.2f s (%6.1f MB/s)  peak RSS %4d MB\n' "$st" "$(echo "$SIZE / $st / 1000000" | bc -l)" "$((sm / 1024))"
printf 'cairn/skopeo throughput: %.2fx\n' "$(echo "$st / $ct" | bc -l)"
record push "$((SIZE / 1000000)) MB image, loopback registry" "skopeo copy" "$st" "$ct"
