#!/usr/bin/env bash
# Benchmark: launcher overhead. The static launcher starting `true` through a buildpack process
# (/cnb/process/web style link, metadata.toml, one layer with env files) against running `true`
# directly, and against the reference lifecycle's launcher (../shared/reference, when present)
# on the same layers; N runs of each, interleaved; median per start. Also the binaries' sizes.
# LAUNCHER_B=PATH adds another launcher to the same rounds (e.g. a previous build).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
N=${N:-300}
bench_lifecycle_dir
L=$LIFECYCLE_DIR/launcher
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/layers/config" "$W/layers/bp/l/env.launch" "$W/app" "$W/proc"
printf '[[buildpacks]]\nid = "bp"\nversion = "1"\napi = "0.10"\n[[processes]]\ntype = "web"\ncommand = ["/bin/true"]\nbuildpack-id = "bp"\n' > "$W/layers/config/metadata.toml"
echo -n value > "$W/layers/bp/l/env.launch/FOO"
ln -s "$L" "$W/proc/web"
REF_TGZ=../shared/reference/lifecycle-v0.21.14+linux.x86-64.tgz
if [ -f "$REF_TGZ" ]; then
  tar -xzf "$REF_TGZ" -C "$W" lifecycle/launcher
  # The reference launcher picks the process by its link name too; same metadata.toml.
  mkdir -p "$W/ref-proc"; ln -s "$W/lifecycle/launcher" "$W/ref-proc/web"
fi
if [ -n "${LAUNCHER_B:-}" ]; then mkdir -p "$W/b-proc"; ln -s "$(realpath "$LAUNCHER_B")" "$W/b-proc/web"; fi
python3 - "$W" "$N" <<'PY'
import os, statistics, subprocess, sys, time
w, n = sys.argv[1], int(sys.argv[2])
env = dict(os.environ, CNB_LAYERS_DIR=w + "/layers", CNB_APP_DIR=w + "/app", CNB_PLATFORM_API="0.12")
runs = {"direct": ["/bin/true"], "cairn": [w + "/proc/web"]}
if os.path.exists(w + "/ref-proc/web"): runs["reference"] = [w + "/ref-proc/web"]
if os.path.exists(w + "/b-proc/web"): runs["LAUNCHER_B"] = [w + "/b-proc/web"]
times = {k: [] for k in runs}
for _ in range(n):
    for k, argv in runs.items():
        t = time.perf_counter(); subprocess.run(argv, env=env, check=True); times[k].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k in runs:
    extra = "" if k == "direct" else f"   overhead {med[k] - med['direct']:.2f} ms"
    print(f"{k:<11} median {med[k]:.2f} ms{extra}")
print(f"({n} runs of each, interleaved)")
if "reference" in med:
    print(f"cairn start / reference start: {med['cairn'] / med['reference']:.2f}  "
          f"(overheads {med['cairn'] - med['direct']:.2f} / {med['reference'] - med['direct']:.2f} ms)")
if os.environ.get("BENCH_TABLE"):
    with open(os.environ["BENCH_TABLE"], "a") as t:
        t.write(f"launcher\tstart of /bin/true via metadata.toml\texec directly\t{med['direct'] / 1000:.6f}\t{med['cairn'] / 1000:.6f}\n")
        if "reference" in med:
            t.write(f"launcher\tstart of /bin/true via metadata.toml\treference launcher\t{med['reference'] / 1000:.6f}\t{med['cairn'] / 1000:.6f}\n")
PY
echo "launcher binary: $(stat -c %s "$L") bytes (static, stripped)"
[ ! -f "$W/lifecycle/launcher" ] || echo "reference launcher: $(stat -c %s "$W/lifecycle/launcher") bytes"
[ -z "${LAUNCHER_B:-}" ] || echo "LAUNCHER_B: $(stat -c %s "$LAUNCHER_B") bytes"
