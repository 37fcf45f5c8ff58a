#!/usr/bin/env bash
# Benchmark: `cairn build` of examples/apps/static-site against `buildah bud --isolation chroot`
# (storage driver vfs) of an equivalent Dockerfile on the same run image, both cold (fresh cache
# / fresh storage) and after changing one source file. Same run, same machine; medians of RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
command -v buildah >/dev/null || { apt-get install -y -qq buildah >/dev/null; }
[ -x .build/static-bin/lifecycle ] || scripts/build-static >/dev/null
swift build -c release --product cairn >/dev/null
CAIRN=$PWD/.build/release/cairn
export CAIRN_LIFECYCLE_BIN=$PWD/.build/static-bin
W=/tmp/cairn-bench-build-$$; rm -rf "$W"; mkdir -p "$W"  # lowercase: buildah names pulled images after the path
export CAIRN_HOME=$W/home
W_LOG=$W/cmd.log
BUILDAH=(buildah --storage-driver vfs --root "$W/buildah/root" --runroot "$W/buildah/run")
trap '"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
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

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timeit() {  # a failed command stops the whole benchmark
  local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W_LOG" || { echo "FAILED: $*" >&2; cat "$W_LOG" >&2; kill $$; exit 1; }
  e=$(date +%s.%N); echo "$e - $s" | bc -l
}
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
m() { printf '%s\n' "$@" | median; }
printf 'cold:              cairn %6.2f s   buildah %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cc[@]}")" "$(m "${bc_[@]}")" "$(echo "$(m "${cc[@]}") / $(m "${bc_[@]}")" | bc -l)"
printf 'one file changed:  cairn %6.2f s   buildah %6.2f s   cairn/buildah time %.2fx\n' "$(m "${cw[@]}")" "$(m "${bw[@]}")" "$(echo "$(m "${cw[@]}") / $(m "${bw[@]}")" | bc -l)"
