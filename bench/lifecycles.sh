#!/usr/bin/env bash
# Benchmark: Cairn's lifecycle against the reference lifecycle (../shared/reference, v0.21.14)
# behind the same platform: `cairn build --lifecycle DIR` on the README's example builder, the
# same app, the same machine, rounds alternating between the two. Per lifecycle: cold (cache
# cleared, no previous image), warm (nothing changed), one file changed. Medians of RUNS.
# APP=big (default): ~250 MB, random + text + 5,000 small files, a Procfile app; APP=site:
# examples/apps/static-site; APP=flask: examples/apps/flask-hello on the Debian stack's builder
# (examples/builder-debian.toml: the python-runtime extension, pip from PyPI), phase by phase as
# Cairn drives builders with extensions. Its extended build and run images are made once and
# reused by both lifecycles (extending is the platform's work, not the lifecycle's); the Debian
# stack is made with debootstrap (minutes, network), or copied from DEBIAN_STACK_STORE (a store
# holding debian/build and debian/run). Run as root (the build sandbox); the reference's phases
# run as the builder's CNB user, as they require.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
APP=${APP:-big}
source bench/lib.sh
reference_setup lifecycles
builder=b; extra=()
if [ "$APP" = site ]; then
  cp -a examples/apps/static-site "$W/app"; changed=public/index.html
elif [ "$APP" = flask ]; then
  if [ -n "${DEBIAN_STACK_STORE:-}" ]; then
    for i in debian/build:latest debian/run:latest; do skopeo copy -q "oci:$DEBIAN_STACK_STORE:$i" "oci:$CAIRN_HOME/store:$i"; done
  fi
  "$CAIRN" inspect debian/run >/dev/null 2>&1 || "$CAIRN" stack create debian --debian bookworm --quiet >/dev/null
  "$CAIRN" builder create debian-builder --config examples/builder-debian.toml --quiet >/dev/null
  cp -a examples/apps/flask-hello "$W/app"; changed=app.py
  builder=debian-builder; extra=(--ca-certs /etc/ssl/certs/ca-certificates.crt)  # pip behind this machine's proxy
else
  make_big_app "$W/app"
  changed=text/part0.txt
fi
echo "app: $(du -sb "$W/app" | cut -f1) bytes, $(find "$W/app" -type f | wc -l) files"

ref=(--lifecycle "$W/lifecycle")
build() { local name=$1; shift; "$CAIRN" build "example.com/bench/$name" --path "$W/app" --builder "$builder" --quiet "${extra[@]}" "$@"; }
# Cold: no previous image, no cache, no kept workspace (the app is copied in full).
cold() {
  local name=$1; shift
  "$CAIRN" rmi "example.com/bench/$name" >/dev/null 2>&1 || true
  rm -rf "$CAIRN_HOME/workspaces/example.com_bench_$name"
  build "$name" --clear-cache "$@"
}
warm() { build "$@"; }
changed() { local name=$1; shift; echo "changed $RANDOM" >> "$W/app/$changed"; build "$name" "$@"; }
build cairn >/dev/null; build ref "${ref[@]}" >/dev/null  # the builder unpacked once (cached per digest)
cc=(); cw=(); c1=(); rc=(); rw=(); r1=()
for _ in $(seq "$RUNS"); do
  cc+=("$(timeit cold cairn)"); rc+=("$(timeit cold ref "${ref[@]}")")
  cw+=("$(timeit warm cairn)"); rw+=("$(timeit warm ref "${ref[@]}")")
  c1+=("$(timeit changed cairn)"); r1+=("$(timeit changed ref "${ref[@]}")")
done
row() {
  local what=$1 r=$2 c=$3
  printf '%-18s reference %7.2f s   cairn %7.2f s   %.2fx\n' "$what" "$r" "$c" "$(echo "$r / $c" | bc -l)"
  record lifecycle "$what, $APP app" "reference lifecycle 0.21.14" "$r" "$c"
}
row cold "$(m "${rc[@]}")" "$(m "${cc[@]}")"
row warm "$(m "${rw[@]}")" "$(m "${cw[@]}")"
row "one file changed" "$(m "${r1[@]}")" "$(m "${c1[@]}")"
if [ -n "${TRACE:-}" ]; then
  warm cairn >/dev/null 2>&1
  echo "--- cairn warm, traced"; CAIRN_TRACE=1 warm cairn 2>&1 | grep '\[trace\]'
fi
