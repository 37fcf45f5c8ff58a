#!/usr/bin/env bash
# Benchmark (issue 38): a `cairn fleet fix` campaign of FLEET rebases (default 500) against a
# loopback docker-registry: images/second (goal ≥ 50/s) against the same images rebased one by
# one by `cairn rebase --remote`, in the same run. The campaign writes <tag>-fleet (--tag-suffix)
# so the baseline then rebases the very same originals in place. What the campaign adds to the
# registry's blob storage per image (goal: manifests and configs only) is measured with du; bytes
# on the wire are asserted by the fleet test through the suite's counting proxy (which, in
# Python, would cap a timed campaign at ~5 images/s). TRACE=1 counts the campaign's requests per
# image (CAIRN_TRACE_HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET=${FLEET:-500}
JOBS=${JOBS:-8}
source bench/lib.sh
bench_setup fleet
command -v docker-registry >/dev/null || apt-get install -y -qq docker-registry >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$W/registry"
cat > "$W/registry/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$W/registry/config.yml" >"$W/registry/log" 2>&1 & REG=$!
trap 'kill $REG 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$W/campaign.err" "$KEEP_LOG"; rm -rf "$W"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
D=127.0.0.1:$port                         # the registry itself: the fleet and the timed runs
I=(--insecure-registry "$D")

run_image() {  # a run image version: libfoo1 $1 over tiny/run, pushed to the registry's run image tag
  mkdir -p "$W/run-$1/var/lib/dpkg/status.d"
  printf 'Package: libfoo1\nSource: foo\nVersion: %s\nStatus: install ok installed\nArchitecture: amd64\n' "$1" > "$W/run-$1/var/lib/dpkg/status.d/libfoo1"
  "$CAIRN" import "$W/run-$1" tiny/run:latest --base tiny/run:latest >/dev/null
  "$CAIRN" push tiny/run:latest "$D/tiny/run:latest" "${I[@]}" >/dev/null
}
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
"$CAIRN" builder create b --config examples/builder.toml --quiet >/dev/null
run_image 1.0-1
mkdir -p "$W/app"; echo "flask==2.3.3" > "$W/app/requirements.txt"
"$CAIRN" build app --path "$W/app" --builder b --buildpack Tests/Fixtures/buildpacks/flask --quiet >/dev/null
"$CAIRN" push app "$D/base/app:1" "${I[@]}" >/dev/null
"$CAIRN" rebase --remote --force --run-image "$D/tiny/run:latest" "$D/base/app:1" "${I[@]}" >/dev/null
"$CAIRN" pull "$D/base/app:1" "${I[@]}" >/dev/null
# FLEET distinct images (a label each) over the same layers, in 3 repositories.
python3 bench/fleet_variants.py "$CAIRN_HOME/store" "$D/base/app:1" "$D" "$FLEET" > "$W/tags"
xargs -P 4 -I{} "$CAIRN" push {} {} "${I[@]}" --quiet < "$W/tags" >/dev/null
run_image 1.0-2
release=$("$CAIRN" inspect tiny/run:latest --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["config"]["Labels"].get("io.buildpacks.base.distro.version",""))')
mkdir -p "$W/osv"
echo '{"id": "DSA-9999-1", "affected": [{"package": {"ecosystem": "Debian:'"$release"'", "name": "foo"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}]}' > "$W/osv/dsa.json"
"$CAIRN" audit advisories import "$W/osv" >/dev/null
R=(--registry "$D/team-a/web" --registry "$D/team-b/api" --registry "$D/team-c/worker")
"$CAIRN" audit index "${R[@]}" --registry "$D/tiny/run" "${I[@]}" >/dev/null

stored_before=$(du -sb "$W/registry/data/docker/registry/v2/blobs" | cut -f1)
s=$(date +%s.%N)
CAIRN_TRACE_HTTP=${TRACE:-0} "$CAIRN" fleet fix "${R[@]}" "${I[@]}" --tag-suffix=-fleet --jobs "$JOBS" --canary 5 > "$W/campaign.txt" 2>"$W/campaign.err" || { cat "$W/campaign.err" >&2; exit 1; }
e=$(date +%s.%N)
campaign=$(echo "$e - $s" | bc -l)
stored=$(( $(du -sb "$W/registry/data/docker/registry/v2/blobs" | cut -f1) - stored_before ))
tail -1 "$W/campaign.txt"
grep -E "re-indexing|images, " "$W/campaign.err" | sed 's/^/  /' >&2 || true
# TRACE=1: the campaign's requests per image, by method and kind (traced runs are slower).
if [ "${TRACE:-0}" = 1 ]; then
  grep -o '→ [A-Z]* [^ ]*' "$W/campaign.err" | sed -E 's|→ ([A-Z]+) [^/]*/v2/.*/(manifests\|blobs/uploads\|blobs)/.*|\1 \2|; s|→ ([A-Z]+) [^/]*/v2/.*/(blobs/uploads)/?$|\1 \2|' \
    | sort | uniq -c | awk -v n="$FLEET" '{ printf "  %-6s %-14s %6d  %.2f per image\n", $2, $3, $1, $1 / n }' >&2
fi
s=$(date +%s.%N)
while read -r tag; do "$CAIRN" rebase --remote "${I[@]}" "$tag" --quiet >/dev/null 2>>"$W/rebase.err"; done < "$W/tags"
e=$(date +%s.%N)
onebyone=$(echo "$e - $s" | bc -l)
printf 'fleet of %d images: campaign %.1f s (%.2f images/s), one by one cairn rebase %.1f s (%.2f images/s), campaign/one-by-one time %.3fx; registry blob storage grew by %d bytes per image (its manifests and configs)\n' \
  "$FLEET" "$campaign" "$(echo "$FLEET / $campaign" | bc -l)" "$onebyone" "$(echo "$FLEET / $onebyone" | bc -l)" \
  "$(echo "$campaign / $onebyone" | bc -l)" "$((stored / FLEET))"
record fleet "fleet fix, $FLEET registry rebases" "cairn rebase one by one" "$onebyone" "$campaign"
