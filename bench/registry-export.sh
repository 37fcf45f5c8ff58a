#!/usr/bin/env bash
# Benchmark: export to a loopback registry. The `creator` of Cairn's lifecycle against the
# reference's (../shared/reference, v0.21.14), driven as a platform's pod drives it: as the CNB
# user (uid 1000), a fresh <layers> per build, the cache directory kept between builds, the app
# image and run image in a loopback docker-registry. The buildpack is examples/buildpacks/procfile;
# the app is the ~250 MB one of bench/lifecycles.sh (APP=big) or examples/apps/static-site
# (APP=site). Per lifecycle: cold (a new repository, no cache: every layer uploaded), warm (nothing
# changed: the previous image in the registry, the cache kept), one file changed. Rounds
# alternate; medians of RUNS. TRACE=1: Cairn's phase times of one more warm build. Export to an OCI layout is what bench/lifecycles.sh times (cairn
# build exports with -layout).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
APP=${APP:-big}
source bench/lib.sh
reference_setup registry-export
registry_start   # $R, stopped on exit
"$CAIRN" push --quiet --insecure-registry "$R" tiny/run:latest "$R/bench/run:1" >/dev/null

# The inputs: the buildpack in the <buildpacks>/<id>/<version> layout, an order naming it, the app.
mkdir -p "$W/in/buildpacks/examples_procfile" "$W/in/platform/env" "$W/cairn-lc"
cp -a examples/buildpacks/procfile "$W/in/buildpacks/examples_procfile/0.1.0"
printf '[[order]]\n[[order.group]]\nid = "examples/procfile"\nversion = "0.1.0"\n' > "$W/in/order.toml"
"$CAIRN" lifecycle install "$W/cairn-lc" >/dev/null
if [ "$APP" = site ]; then
  cp -a examples/apps/static-site "$W/app"; changed=public/index.html
  echo 'web: httpd -f -p 8080' > "$W/app/Procfile"
else
  make_big_app "$W/app"; changed=text/part0.txt
fi
echo "app: $(du -sb "$W/app" | cut -f1) bytes, $(find "$W/app" -type f | wc -l) files"
for who in cairn ref; do cp -a "$W/app" "$W/$who-app"; done
chown -R 1000:1000 "$W/cairn-app" "$W/ref-app"
chmod -R a+rX "$W/in" "$W/cairn-lc"

# create WHO IMAGE: one creator run with a fresh <layers> (the cache dir $W/WHO-cache is kept).
create() {
  local who=$1 image=$2 dir
  dir=$([ "$who" = cairn ] && echo "$W/cairn-lc" || echo "$W/lifecycle")
  rm -rf "$W/$who-layers"; mkdir -p "$W/$who-layers" "$W/$who-cache"; chown 1000:1000 "$W/$who-layers" "$W/$who-cache"
  local insecure=(); [ "$who" = cairn ] && insecure=(-insecure-registry "$R")
  setpriv --reuid=1000 --regid=1000 --clear-groups env HOME="$W/$who-layers" CAIRN_TRACE="${TRACE:-}" CNB_PLATFORM_API=0.12 CNB_USER_ID=1000 CNB_GROUP_ID=1000 \
    "$dir/creator" -app "$W/$who-app" -buildpacks "$W/in/buildpacks" -order "$W/in/order.toml" -platform "$W/in/platform" \
    -layers "$W/$who-layers" -cache-dir "$W/$who-cache" -launcher "$dir/launcher" -run-image "$R/bench/run:1" \
    -report "$W/$who-layers/report.toml" "${insecure[@]}" "$image"
}
# WHO N: round N's image is bench/WHO-N, a repository of its own.
cold() { rm -rf "$W/$1-cache"; create "$1" "$R/bench/$1-$2:latest"; }
warm() { create "$1" "$R/bench/$1-$2:latest"; }
changed() { echo "changed $RANDOM" >> "$W/$1-app/$changed"; create "$1" "$R/bench/$1-$2:latest"; }

# Each once, checked: the image runs nothing here, so its manifest is read back: the app's
# layers and the run image's below them.
for who in cairn ref; do cold "$who" 0 > "$W/first.log" 2>&1 || { echo "the $who creator failed:" >&2; cat "$W/first.log" >&2; exit 1; }; done
for who in cairn ref; do
  python3 - "$R" "bench/$who-0" "$who" <<'PY'
import json, sys, urllib.request
r, repo, who = sys.argv[1:]
def get(path, accept):
    return json.load(urllib.request.urlopen(urllib.request.Request(f"http://{r}/v2/{path}", headers={"Accept": accept})))
acc = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
app, run = get(f"{repo}/manifests/latest", acc), get("bench/run/manifests/1", acc)
layers = [l["digest"] for l in app["layers"]]
ok = layers[:len(run["layers"])] == [l["digest"] for l in run["layers"]] and len(layers) > len(run["layers"])
labels = get(f"{repo}/blobs/{app['config']['digest']}", "*/*")["config"]["Labels"]
ok = ok and "io.buildpacks.lifecycle.metadata" in labels
print(f"{who}: exported {len(layers)} layers {'ok' if ok else 'WRONG'}")
sys.exit(0 if ok else 1)
PY
done
cc=(); cw=(); c1=(); rc=(); rw=(); r1=()
for i in $(seq "$RUNS"); do
  cc+=("$(timeit cold cairn "$i")"); rc+=("$(timeit cold ref "$i")")
  cw+=("$(timeit warm cairn "$i")"); rw+=("$(timeit warm ref "$i")")
  c1+=("$(timeit changed cairn "$i")"); r1+=("$(timeit changed ref "$i")")
done
row() {
  local what=$1 r=$2 c=$3
  printf '%-28s reference %7.2f s   cairn %7.2f s   %.2fx\n' "$what" "$r" "$c" "$(echo "$r / $c" | bc -l)"
  record registry-export "$what, $APP app" "reference creator 0.21.14" "$r" "$c"
}
row "registry cold" "$(m "${rc[@]}")" "$(m "${cc[@]}")"
row "registry warm" "$(m "${rw[@]}")" "$(m "${cw[@]}")"
row "registry one file changed" "$(m "${r1[@]}")" "$(m "${c1[@]}")"
if [ -n "${TRACE:-}" ]; then warm cairn "$RUNS" 2>&1 | grep '\[trace\]'; fi
