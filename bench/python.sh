#!/usr/bin/env bash
# Benchmark: `cairn build` of a Python app on a Debian bookworm stack (the python-runtime
# extension brings Python; the Python buildpack installs with the app's installer: APP=flask,
# examples/apps/flask-hello with pip; APP=poetry or APP=uv, the lock-file apps of the tests) against
# `buildah bud --isolation chroot` (storage driver vfs, --layers) of an equivalent Dockerfile on
# the same Debian run image: cold (no caches, no extended images), warm (nothing changed), and
# after changing one source file. Same run, same machine; medians of RUNS; ratios are Cairn's
# time over buildah's (goals: warm <= 0.2x, one file <= 0.3x). Needs root (debootstrap,
# extensions) and network (Debian mirror, PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
APP=${APP:-flask}   # flask (pip), poetry (poetry.lock) or uv (uv.lock): the apps of the tests
source bench/lib.sh
bench_setup python buildah
CA=/etc/ssl/certs/ca-certificates.crt
"$CAIRN" stack create debian --debian bookworm --quiet >/dev/null
"$CAIRN" builder create debian-builder --config examples/builder-debian.toml --quiet >/dev/null
"${BUILDAH[@]}" pull -q "oci:$CAIRN_HOME/store:debian/run:latest" >/dev/null
id=$("${BUILDAH[@]}" images -q | head -1); "${BUILDAH[@]}" tag "$id" localhost/debian-run
BASE='FROM localhost/debian-run
USER root
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY .ca.crt /etc/ssl/certs/extra-ca.crt
ENV PIP_CERT=/etc/ssl/certs/extra-ca.crt SSL_CERT_FILE=/etc/ssl/certs/extra-ca.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/extra-ca.crt'
# The same installer, lock and versions on both sides (Poetry 2.5.1 and uv 0.13.9 in a tools venv).
case "$APP" in
  flask)
    cp -a examples/apps/flask-hello "$W/app"; CHANGED=app.py
    INSTALL='RUN python3 -m venv /venv
COPY requirements.txt /app/
RUN /venv/bin/pip install -q -r /app/requirements.txt'
    CMD='CMD ["/venv/bin/python", "app.py"]' ;;
  poetry)
    cp -a Tests/Fixtures/python-apps/poetry "$W/app"; CHANGED=server.py
    INSTALL='RUN python3 -m venv /tools && /tools/bin/pip install -q poetry==2.5.1 && python3 -m venv --without-pip /venv
COPY pyproject.toml poetry.lock /app/
RUN cd /app && HOME=/root VIRTUAL_ENV=/venv POETRY_VIRTUALENVS_CREATE=false /tools/bin/poetry sync --only main --no-root'
    CMD='CMD ["/venv/bin/gunicorn", "server:app"]' ;;
  uv)
    cp -a Tests/Fixtures/python-apps/uv "$W/app"; CHANGED=main.py
    INSTALL='RUN python3 -m venv /tools && /tools/bin/pip install -q uv==0.13.9
COPY pyproject.toml uv.lock /app/
RUN cd /app && UV_PROJECT_ENVIRONMENT=/venv UV_PYTHON=/usr/bin/python3 UV_PYTHON_DOWNLOADS=never /tools/bin/uv sync --frozen --no-dev'
    CMD='CMD ["/venv/bin/uvicorn", "main:app", "--host", "0.0.0.0"]' ;;
  *) echo "APP must be flask, poetry or uv" >&2; exit 2 ;;
esac
cp "$CA" "$W/app/.ca.crt"   # installers behind this machine's proxy, for both sides
printf '%s\n%s\nCOPY . /app\nWORKDIR /app\nUSER 1001:1001\n%s\n' "$BASE" "$INSTALL" "$CMD" > "$W/Dockerfile"

cairn_build() { "$CAIRN" build "$APP" --path "$W/app" --builder debian-builder --ca-certs "$CA" --quiet "$@"; }
cairn_cold() {
  for ref in $("$CAIRN" images | awk '/cairn-extended/ {print $1}'); do "$CAIRN" rmi "$ref" >/dev/null; done
  "$CAIRN" rmi "$APP" >/dev/null 2>&1 || true
  cairn_build --clear-cache
}
cairn_warm() { cairn_build; }
cairn_change() { echo "# $RANDOM" >> "$W/app/$CHANGED"; cairn_build; }
buildah_cold() { "${BUILDAH[@]}" bud --isolation chroot --pull-never --no-cache --layers -q -t flask -f "$W/Dockerfile" "$W/app" 1>&2; }  # its output with the errors, should it fail
buildah_warm() { "${BUILDAH[@]}" bud --isolation chroot --pull-never --layers -q -t flask -f "$W/Dockerfile" "$W/app" 1>&2; }
buildah_change() { echo "# $RANDOM" >> "$W/app/$CHANGED"; buildah_warm; }
cc=(); cw=(); c1=(); bc_=(); bw=(); b1=()
for _ in $(seq "$RUNS"); do
  cc+=("$(timeit cairn_cold)"); cw+=("$(timeit cairn_warm)"); c1+=("$(timeit cairn_change)")
  bc_+=("$(timeit buildah_cold)"); bw+=("$(timeit buildah_warm)"); b1+=("$(timeit buildah_change)")
done
echo "app: $APP"
row() { printf '%-18s cairn %7.2f s   buildah %7.2f s   cairn/buildah time %.2fx\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)"; }
row "cold:" "$(m "${cc[@]}")" "$(m "${bc_[@]}")"
row "warm, no change:" "$(m "${cw[@]}")" "$(m "${bw[@]}")"
row "one file changed:" "$(m "${c1[@]}")" "$(m "${b1[@]}")"
