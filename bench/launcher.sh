#!/usr/bin/env bash
# Benchmark: launcher overhead. The static launcher starting `true` through a buildpack process
# (/cnb/process/web style link, metadata.toml, one layer with env files) against running `true`
# directly, N runs each interleaved; median per start. Also the launcher binary's size.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N=${N:-300}
[ -x .build/static-bin/launcher ] || scripts/build-static >/dev/null
L=$PWD/.build/static-bin/launcher
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/layers/config" "$W/layers/bp/l/env.launch" "$W/app" "$W/proc"
printf '[[buildpacks]]\nid = "bp"\nversion = "1"\napi = "0.10"\n[[processes]]\ntype = "web"\ncommand = ["/bin/true"]\nbuildpack-id = "bp"\n' > "$W/layers/config/metadata.toml"
echo -n value > "$W/layers/bp/l/env.launch/FOO"
ln -s "$L" "$W/proc/web"
python3 - "$W" "$N" <<'PY'
import os, statistics, subprocess, sys, time
w, n = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, CNB_LAYERS_DIR=w + "/layers", CNB_APP_DIR=w + "/app")
direct, launched = [], []
for _ in range(n):
    t = time.perf_counter(); subprocess.run(["/bin/true"], env=env, check=True); direct.append(time.perf_counter() - t)
    t = time.perf_counter(); subprocess.run([w + "/proc/web"], env=env, check=True); launched.append(time.perf_counter() - t)
d, l = statistics.median(direct) * 1000, statistics.median(launched) * 1000
print(f"direct /bin/true   median {d:.2f} ms")
print(f"via launcher       median {l:.2f} ms")
print(f"launcher overhead  median {l - d:.2f} ms ({n} runs each)")
if os.environ.get("BENCH_TABLE"):
    with open(os.environ["BENCH_TABLE"], "a") as t:
        t.write(f"launcher\tstart of /bin/true via metadata.toml\texec directly\t{d / 1000:.6f}\t{l / 1000:.6f}\n")
PY
echo "launcher binary: $(stat -c %s "$L") bytes (static, stripped)"
