#!/usr/bin/env bash
# Benchmark: `cairn build` of examples/apps/static-site against `buildah bud --isolation chroot`
# (storage driver vfs) of an equivalent Dockerfile on the same run image, both cold (fresh cache
# / fresh storage) and after changing one source file. Same run, same machine; medians of RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
source bench/lib.sh
bench_setup build buildah
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
"$CAIRN" builder create b --config examples/builder.toml --quiet >/dev/null
"${BUILDAH[@]}" pull -q "oci:$CAIRN_HOME/store:tiny/run:latest" >/dev/null
id=$("${BUILDAH[@]}" images -q | head -1); "${BUILDAH[@]}" tag "$id" localhost/tiny-run
cp -a examples/apps/static-site "$W/app"
cat > "$W/app/serve" <<'SH'
#!/bin/sh
exec busybox httpd -f -v -p "${PORT:-8080}" -h /workspace/public
SH
chmod +x "$W/app/serve"
cat > "$W/Dockerfile" <<'DF'
FROM localhost/tiny-run
COPY public /workspace/public
COPY serve /usr/local/bin/serve
WORKDIR /workspace
CMD ["serve"]
DF

cairn_cold() { rm -rf "$CAIRN_HOME/cache"; "$CAIRN" build site --path "$W/app" --builder b --quiet --clear-cache; }
cairn_warm() { echo "<!-- $RANDOM -->" >> "$W/app/public/index.html"; "$CAIRN" build site --path "$W/app" --builder b --quiet; }
buildah_cold() { "${BUILDAH[@]}" rmi -f site >/dev/null 2>&1 || true; "${BUILDAH[@]}" bud --isolation chroot --pull-never --layers=false -q -t site -f "$W/Dockerfile" "$W/app"; }
buildah_warm() { echo "<!-- $RANDOM -->" >> "$W/app/public/index.html"; "${BUILDAH[@]}" bud --isolation chroot --pull-never --layers -q -t site -f "$W/Dockerfile" "$W/app"; }
"$CAIRN" build site --path "$W/app" --builder b --quiet >/dev/null  # unpacks the builder once (cached per digest)
cc=(); cw=(); bc_=(); bw=()
for _ in $(seq "$RUNS"); do
  cc+=("$(timeit cairn_cold)"); cw+=("$(timeit cairn_warm)")
  bc_+=("$(timeit buildah_cold)"); bw+=("$(timeit buildah_warm)")
done
printf 'cold:              cairn %6.2f s   buildah %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cc[@]}")" "$(m "${bc_[@]}")" "$(echo "$(m "${cc[@]}") / $(m "${bc_[@]}")" | bc -l)"
printf 'one file changed:  cairn %6.2f s   buildah %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cw[@]}")" "$(m "${bw[@]}")" "$(echo "$(m "${cw[@]}") / $(m "${bw[@]}")" | bc -l)"
record build "cold, static-site" "buildah bud" "$(m "${bc_[@]}")" "$(m "${cc[@]}")"
record build "one file changed" "buildah bud --layers" "$(m "${bw[@]}")" "$(m "${cw[@]}")"
