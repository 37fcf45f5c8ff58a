#!/usr/bin/env bash
# Benchmark: applying the same extension-style Dockerfile (one RUN creating 10,000 files, one COPY
# of 100 MB) to the same base image with `cairn extend` (overlay layers, RUN in runc, gzip
# layers in the store) against `buildah bud --isolation chroot` (storage driver vfs, layers kept
# uncompressed until a push). Same run, same machine; medians of RUNS; the ratio is Cairn's time
# over buildah's (goal <= 1.0). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
source bench/lib.sh
bench_setup extend buildah
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
"${BUILDAH[@]}" pull -q "oci:$CAIRN_HOME/store:tiny/run:latest" >/dev/null
id=$("${BUILDAH[@]}" images -q | head -1); "${BUILDAH[@]}" tag "$id" localhost/tiny-run
mkdir -p "$W/context"
head -c 100000000 /dev/urandom > "$W/context/big.bin"
body='USER root
RUN mkdir -p /data && i=0 && while [ $i -lt 10000 ]; do echo $i > /data/f$i; i=$((i+1)); done
COPY big.bin /opt/big.bin
USER 1001:1001'
printf 'ARG base_image\nFROM ${base_image}\n%s\n' "$body" > "$W/context/run.Dockerfile"
printf 'FROM localhost/tiny-run\n%s\n' "$body" > "$W/context/Dockerfile"

cairn_extend() { "$CAIRN" extend tiny/run:latest --dockerfile "$W/context/run.Dockerfile" --tag "ext:$RANDOM" --quiet "$@"; }
buildah_bud() { "${BUILDAH[@]}" bud --isolation chroot --pull-never --layers=false -q -t "ext$RANDOM" -f "$W/context/Dockerfile" "$W/context"; }
cairn_extend >/dev/null  # unpacks the base once (cached per digest), as builds do
cg=(); cn=(); b=()
for _ in $(seq "$RUNS"); do
  cg+=("$(timeit cairn_extend)"); cn+=("$(timeit cairn_extend --compression none)"); b+=("$(timeit buildah_bud)")
done
printf 'cairn extend (gzip layers):  %6.2f s   buildah bud %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cg[@]}")" "$(m "${b[@]}")" "$(echo "$(m "${cg[@]}") / $(m "${b[@]}")" | bc -l)"
printf 'cairn extend (uncompressed): %6.2f s   buildah bud %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cn[@]}")" "$(m "${b[@]}")" "$(echo "$(m "${cn[@]}") / $(m "${b[@]}")" | bc -l)"
