#!/usr/bin/env bash
# Benchmark: `cairn build` of examples/apps/flask-hello on a Debian bookworm stack (the
# python-runtime extension brings Python, the Python buildpack installs Flask with pip) against
# `buildah bud --isolation chroot` (storage driver vfs, --layers) of an equivalent Dockerfile on
# the same Debian run image: cold (no caches, no extended images), warm (nothing changed), and
# after changing one source file. Same run, same machine; medians of RUNS; ratios are Cairn's
# time over buildah's (goals: warm <= 0.2x, one file <= 0.3x). Needs root (debootstrap,
# extensions) and network (Debian mirror, PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
source bench/lib.sh
bench_setup python buildah
CA=/etc/ssl/certs/ca-certificates.crt
"$CAIRN" stack create debian --debian bookworm --quiet >/dev/null
"$CAIRN" builder create debian-builder --config examples/builder-debian.toml --quiet >/dev/null
"${BUILDAH[@]}" pull -q "oci:$CAIRN_HOME/store:debian/run:latest" >/dev/null
id=$("${BUILDAH[@]}" images -q | head -1); "${BUILDAH[@]}" tag "$id" localhost/debian-run
cp -a examples/apps/flask-hello "$W/app"
cp "$CA" "$W/app/.ca.crt"   # pip behind this machine's proxy, for both sides
cat > "$W/Dockerfile" <<'DF'
FROM localhost/debian-run
USER root
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /venv
COPY .ca.crt /etc/ssl/certs/extra-ca.crt
COPY requirements.txt /app/
RUN PIP_CERT=/etc/ssl/certs/extra-ca.crt /venv/bin/pip install -q -r /app/requirements.txt
COPY . /app
WORKDIR /app
USER 1001:1001
CMD ["/venv/bin/python", "app.py"]
DF

cairn_build() { "$CAIRN" build flask --path "$W/app" --builder debian-builder --ca-certs "$CA" --quiet "$@"; }
cairn_cold() {
  for ref in $("$CAIRN" images | awk '/cairn-extended/ {print $1}'); do "$CAIRN" rmi "$ref" >/dev/null; done
  "$CAIRN" rmi flask >/dev/null 2>&1 || true
  cairn_build --clear-cache
}
cairn_warm() { cairn_build; }
cairn_change() { echo "# $RANDOM" >> "$W/app/app.py"; cairn_build; }
buildah_cold() { "${BUILDAH[@]}" bud --isolation chroot --pull-never --no-cache --layers -q -t flask -f "$W/Dockerfile" "$W/app"; }
buildah_warm() { "${BUILDAH[@]}" bud --isolation chroot --pull-never --layers -q -t flask -f "$W/Dockerfile" "$W/app"; }
buildah_change() { echo "# $RANDOM" >> "$W/app/app.py"; buildah_warm; }
cc=(); cw=(); c1=(); bc_=(); bw=(); b1=()
for _ in $(seq "$RUNS"); do
  cc+=("$(timeit cairn_cold)"); cw+=("$(timeit cairn_warm)"); c1+=("$(timeit cairn_change)")
  bc_+=("$(timeit buildah_cold)"); bw+=("$(timeit buildah_warm)"); b1+=("$(timeit buildah_change)")
done
row() { printf '%-18s cairn %7.2f s   buildah %7.2f s   cairn/buildah time %.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }
row "cold:" "$(m "${cc[@]}")" "$(m "${bc_[@]}")"
row "warm, no change:" "$(m "${cw[@]}")" "$(m "${bw[@]}")"
row "one file changed:" "$(m "${c1[@]}")" "$(m "${b1[@]}")"
