#!/usr/bin/env bash
# Benchmark: what --sign costs a warm `cairn build` of examples/apps/static-site (one file
# changed each build): signature, SLSA provenance and SBOM attestations against the same build
# unsigned, run alternately (farm-bench's paired ratio when it is installed, else medians of RUNS
# alternating rounds). Goal: signing and attesting add at most 5%.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
source bench/lib.sh
bench_setup trust
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
"$CAIRN" builder create b --config examples/builder.toml --quiet >/dev/null
"$CAIRN" key generate --output-key-prefix "$W/k" >/dev/null
cp -a examples/apps/static-site "$W/app"
cat > "$W/unsigned.sh" <<SH
#!/bin/sh
echo "<!-- \$\$ -->" >> "$W/app/public/index.html"
exec "$CAIRN" build site --path "$W/app" --builder b --quiet
SH
cat > "$W/signed.sh" <<SH
#!/bin/sh
echo "<!-- \$\$ -->" >> "$W/app/public/index.html"
exec "$CAIRN" build site --path "$W/app" --builder b --quiet --sign --key "$W/k.key"
SH
chmod +x "$W/unsigned.sh" "$W/signed.sh"
"$W/unsigned.sh" >/dev/null 2>&1  # unpacks the builder once (cached per digest), fills the cache
if command -v farm-bench >/dev/null; then
  farm-bench -n "$RUNS" --timeout 600 --vs "$W/unsigned.sh" -- "$W/signed.sh" | tee "$W/farm.txt"
fi
signed=(); unsigned=()
for _ in $(seq "$RUNS"); do unsigned+=("$(timeit "$W/unsigned.sh")"); signed+=("$(timeit "$W/signed.sh")"); done
printf 'warm build, one file changed: unsigned %.3f s, --sign %.3f s, signed/unsigned %.3fx\n' \
  "$(m "${unsigned[@]}")" "$(m "${signed[@]}")" "$(echo "$(m "${signed[@]}") / $(m "${unsigned[@]}")" | bc -l)"
record trust "warm build --sign, static-site" "same build unsigned" "$(m "${unsigned[@]}")" "$(m "${signed[@]}")"
