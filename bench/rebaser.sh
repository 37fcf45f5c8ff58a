#!/usr/bin/env bash
# Benchmark: the `rebaser` phase of Cairn's lifecycle against the reference lifecycle's
# (../shared/reference, v0.21.14) on the same app image in a loopback docker-registry: an app with
# SIZE_MB (default 1024) of app files, built by `cairn build`, put on a new run image. Rounds
# alternate; before each rebase the app's tag is put back on the original manifest. Both run as
# the CNB user (uid 1000), as a platform runs them; the reference reaches 127.0.0.1 over HTTP by
# itself, Cairn's is told with -insecure-registry; -force for both, as the run image is pushed
# under another name than the one the app was built on. Medians of RUNS. TRACE=1 adds one traced
# Cairn rebase (its HTTP requests with milliseconds).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3} SIZE_MB=${SIZE_MB:-1024}
reference_setup rebaser
registry_start   # $R, stopped on exit

mkdir -p "$W/app" "$W/patch/etc"
head -c "$((SIZE_MB * 1048576))" /dev/urandom > "$W/app/data.bin"
echo 'web: ls' > "$W/app/Procfile"
"$CAIRN" build app --path "$W/app" --builder b --quiet >/dev/null
echo 2 > "$W/patch/etc/run-image-patch"
"$CAIRN" import "$W/patch" tiny/run:2 --base tiny/run:latest --quiet >/dev/null
push() { "$CAIRN" push --quiet --insecure-registry "$R" "$1" "$R/$2" >/dev/null; }
push app bench/app:original
push tiny/run:latest bench/run:1
push tiny/run:2 bench/run:2
echo "app image: $("$CAIRN" inspect --format json app | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])') bytes"

# The rebasers run as uid 1000 with a home of their own; the tag goes back before each run
# (not timed).
mkdir -p "$W/user" && chown 1000:1000 "$W/user"
as_user() { setpriv --reuid=1000 --regid=1000 --clear-groups env HOME="$W/user" CNB_PLATFORM_API=0.12 CNB_USER_ID=1000 CNB_GROUP_ID=1000 "$@"; }
reset() { push app bench/app:latest; }
cairn_rebase() { as_user "$CAIRN_LIFECYCLE_BIN/lifecycle" rebaser -force -insecure-registry "$R" -run-image "$R/bench/run:2" -report "$W/user/report.toml" "$R/bench/app:latest"; }
ref_rebase() { as_user "$W/lifecycle/rebaser" -force -run-image "$R/bench/run:2" -report "$W/user/report.toml" "$R/bench/app:latest"; }
# Each once, checked: the app's tag must point at a manifest that starts with the new run
# image's layers and keeps the app's.
check() {
  python3 - "$R" "$1" <<'PY'
import json, sys, urllib.request
r, who = sys.argv[1], sys.argv[2]
def manifest(repo, tag):
    req = urllib.request.Request(f"http://{r}/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})
    return [l["digest"] for l in json.load(urllib.request.urlopen(req))["layers"]]
app, run, old, original = manifest("bench/app", "latest"), manifest("bench/run", "2"), manifest("bench/run", "1"), manifest("bench/app", "original")
ok = app[:len(run)] == run and app[len(run):] == original[len(old):]
print(f"{who}: rebased onto run:2 {'yes' if ok else 'NO'}")
sys.exit(0 if ok else 1)
PY
}
reset; cairn_rebase >/dev/null; check cairn
reset; ref_rebase > "$W/ref.log" 2>&1 || { echo "the reference rebaser failed:" >&2; cat "$W/ref.log" >&2; exit 1; }; check reference
c=(); r=()
for _ in $(seq "$RUNS"); do
  reset; c+=("$(timeit cairn_rebase)")
  reset; r+=("$(timeit ref_rebase)")
done
printf 'rebaser, %s MB app:  reference %6.3f s   cairn %6.3f s   %.2fx\n' \
  "$SIZE_MB" "$(m "${r[@]}")" "$(m "${c[@]}")" "$(echo "$(m "${r[@]}") / $(m "${c[@]}")" | bc -l)"
record rebaser "$SIZE_MB MB app, loopback registry" "reference rebaser 0.21.14" "$(m "${r[@]}")" "$(m "${c[@]}")"
if [ -n "${TRACE:-}" ]; then
  echo "--- cairn rebase, traced (CAIRN_TRACE_HTTP=1, CAIRN_TRACE=1)"
  reset; as_user env CAIRN_TRACE_HTTP=1 CAIRN_TRACE=1 "$CAIRN_LIFECYCLE_BIN/lifecycle" rebaser -force -insecure-registry "$R" -run-image "$R/bench/run:2" \
    -report "$W/user/report.toml" "$R/bench/app:latest" 2>&1 | grep -E '^\[(http|trace)'
fi
