#!/usr/bin/env bash
# Benchmark: patching one buildpack layer of an app image (`cairn rebase --layer-patches`) against
# rebuilding the app (warm `cairn build`, what a platform does without layer patches), in the same
# run. The app carries SIZE_MB of incompressible files so a rebuild has a real app layer to
# write; a patch links one existing blob and writes a config, a manifest and the SBOM layer.
# Also: the same patch in a registry (--remote), where the layer is mounted. Medians of RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
bench_setup patch
"$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
# Two builders: the runtime buildpack at 1.0.0 (the apps) and at 1.0.1 (the patch image).
for v in 1.0.0 1.0.1; do
  mkdir -p "$W/bp-$v" && cp -a Tests/Fixtures/buildpacks/runtime/. "$W/bp-$v/"
  sed -i "s/^version = \"1.0.0\"/version = \"$v\"/" "$W/bp-$v/buildpack.toml"
  cat > "$W/builder-$v.toml" <<TOML
[[buildpacks]]
uri = "$W/bp-$v"
[[order]]
  [[order.group]]
  id = "tests/runtime"
  version = "$v"
[build]
image = "tiny/build:latest"
[[run.images]]
image = "tiny/run:latest"
TOML
  "$CAIRN" builder create "b-$v" --config "$W/builder-$v.toml" --quiet >/dev/null
done
mkdir -p "$W/app"; echo "web: cat /dev/null" > "$W/app/Procfile"
head -c $((SIZE_MB << 20)) /dev/urandom > "$W/app/big.bin"
"$CAIRN" build app --path "$W/app" --builder b-1.0.0 --quiet >/dev/null
"$CAIRN" build app-run --path "$W/app" --builder b-1.0.0 --quiet >/dev/null
"$CAIRN" build patch --path "$W/app" --builder b-1.0.1 --quiet >/dev/null
# Forward (the timed patch) and back again from the unpatched app, so every run patches.
echo '{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "patch:latest"}]}' > "$W/forward.json"
echo '{"patches": [{"buildpack": "tests/runtime", "layer": "runtime", "patch-image": "app:latest"}]}' > "$W/back.json"

pt=(); bd=()
for _ in $(seq "$RUNS"); do
  pt+=("$(timeit "$CAIRN" rebase app-run --layer-patches "$W/forward.json")")
  "$CAIRN" rebase app-run --layer-patches "$W/back.json" >/dev/null
  bd+=("$(timeit "$CAIRN" build app --path "$W/app" --builder b-1.0.0 --quiet)")
done
# The patch really happened: the runtime layer is the patch image's.
"$CAIRN" rebase app-run --layer-patches "$W/forward.json" | grep -q "patched tests/runtime:runtime" || { echo "FAILED: no patch applied" >&2; exit 1; }

# The same patch in a loopback registry: the patch layer is mounted, nothing else travels.
registry_start   # $R, stopped on exit
for pair in "app-run apps/app-run:1" "app apps/app:1" "patch patches/runtime:1" "tiny/run:latest tiny/run:1"; do
  set -- $pair; "$CAIRN" push --quiet --insecure-registry "$R" "$1" "$R/$2" >/dev/null
done
echo "{\"patches\": [{\"buildpack\": \"tests/runtime\", \"layer\": \"runtime\", \"patch-image\": \"$R/patches/runtime:1\"}]}" > "$W/forward-r.json"
echo "{\"patches\": [{\"buildpack\": \"tests/runtime\", \"layer\": \"runtime\", \"patch-image\": \"$R/apps/app:1\"}]}" > "$W/back-r.json"
remote=("$CAIRN" rebase --remote --force --insecure-registry "$R" --run-image "$R/tiny/run:1")
rt=()
for _ in $(seq "$RUNS"); do
  rt+=("$(timeit "${remote[@]}" --layer-patches "$W/forward-r.json" "$R/apps/app-run:1")")
  "${remote[@]}" --layer-patches "$W/back-r.json" "$R/apps/app-run:1" >/dev/null
done
"${remote[@]}" --layer-patches "$W/forward-r.json" "$R/apps/app-run:1" | grep -q "patched tests/runtime:runtime" || { echo "FAILED: no registry patch applied" >&2; exit 1; }

printf 'app image with %d MiB of app files, one buildpack layer patched (store):\n' "$SIZE_MB"
printf '  cairn rebase --layer-patches %6.3f s   cairn build (warm) %6.2f s   rebuild/patch time %.0fx\n' \
  "$(m "${pt[@]}")" "$(m "${bd[@]}")" "$(echo "$(m "${bd[@]}") / $(m "${pt[@]}")" | bc -l)"
printf '  registry: cairn rebase --remote --layer-patches %6.3f s   warm build/registry patch time %.0fx\n' \
  "$(m "${rt[@]}")" "$(echo "$(m "${bd[@]}") / $(m "${rt[@]}")" | bc -l)"
