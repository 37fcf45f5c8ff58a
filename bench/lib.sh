# Shared by the benchmarks: `source bench/lib.sh` from the repository root.

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }

# timeit CMD...: wall seconds; a failed command stops the whole benchmark, its stderr shown.
timeit() {
  local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W_LOG" || { echo "FAILED: $*" >&2; cat "$W_LOG" >&2; kill $$; exit 1; }
  e=$(date +%s.%N); echo "$e - $s" | bc -l
}

# bench_cairn: $CAIRN, a release cairn built from this tree, or $BENCH_CAIRN when set.
# bench_lifecycle_dir: $LIFECYCLE_DIR, the static lifecycle and launcher built from this tree
# (.build/static-bin), or $BENCH_LIFECYCLE_DIR when set. bench/regression.sh runs every
# benchmark with a previous build's binaries through these two.
bench_cairn() {
  if [ -n "${BENCH_CAIRN:-}" ]; then CAIRN=$BENCH_CAIRN; return; fi
  swift build -c release --product cairn >/dev/null
  CAIRN=$PWD/.build/release/cairn
}
bench_lifecycle_dir() {
  if [ -n "${BENCH_LIFECYCLE_DIR:-}" ]; then LIFECYCLE_DIR=$BENCH_LIFECYCLE_DIR; return; fi
  [ -x .build/static-bin/lifecycle ] || scripts/build-static >/dev/null
  LIFECYCLE_DIR=$PWD/.build/static-bin
}

# bench_setup NAME [buildah]: the static lifecycle, a release cairn ($CAIRN), a work directory $W
# (lowercase: buildah names pulled images after the path) holding CAIRN_HOME, removed on exit;
# with buildah, $BUILDAH (vfs storage under $W), installed when missing.
bench_setup() {
  bench_lifecycle_dir
  bench_cairn
  export CAIRN_LIFECYCLE_BIN=$LIFECYCLE_DIR
  W=/tmp/cairn-bench-$1-$$; rm -rf "$W"; mkdir -p "$W"
  export CAIRN_HOME=$W/home
  W_LOG=$W/cmd.log
  if [ "${2:-}" = buildah ]; then
    command -v buildah >/dev/null || { apt-get install -y -qq buildah >/dev/null; }
    BUILDAH=(buildah --storage-driver vfs --root "$W/buildah/root" --runroot "$W/buildah/run")
    trap '"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
  else
    trap 'rm -rf "$W"' EXIT
  fi
}

# record BENCHMARK MEASURE BASELINE BASELINE_SECONDS CAIRN_SECONDS: one row of the table that
# bench/all.sh prints (a no-op when a benchmark runs on its own).
record() { [ -z "${BENCH_TABLE:-}" ] || printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$BENCH_TABLE"; }

# pg_start DIR: a throwaway PostgreSQL cluster in DIR (the newest installed server; trust auth,
# fsync off) on a free loopback port $PG_PORT, user cairn; pg_stop stops it. Returns 1 when no
# PostgreSQL server is installed.
pg_start() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || return 1
  PG_DIR=$1; mkdir -p "$PG_DIR"; chown postgres "$PG_DIR" 2>/dev/null || true
  PG_AS=(); [ "$(id -u)" -eq 0 ] && PG_AS=(runuser -u postgres --)
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U cairn --auth=trust -E UTF8 --no-sync >/dev/null
  python3 -c 'import subprocess,sys; sys.exit(subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode)' \
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=512MB" start
}
pg_stop() { "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; }

# reference_setup NAME: bench_setup NAME, plus the reference lifecycle (../shared/reference)
# unpacked into $W/lifecycle (readable by the CNB user) and the tiny stack and the README's
# example builder (`b`) in $CAIRN_HOME.
reference_setup() {
  local tgz=../shared/reference/lifecycle-v0.21.14+linux.x86-64.tgz
  [ -f "$tgz" ] || { echo "bench/$1.sh: $tgz is missing" >&2; exit 1; }
  bench_setup "$1"
  tar -xzf "$tgz" -C "$W"
  chmod 755 "$W"
  "$CAIRN" stack create tiny --packages busybox-static,bash-static --quiet >/dev/null
  "$CAIRN" builder create b --config examples/builder.toml --quiet >/dev/null
}

# make_big_app DIR: the ~250 MB app of bench/lifecycles.sh and bench/registry-export.sh: 200 MB
# random, 8 text files, 5,000 small files (text and small files seeded), and a Procfile.
make_big_app() {
  mkdir -p "$1/small" "$1/text"
  head -c 200000000 /dev/urandom > "$1/random.bin"
  python3 - "$1" <<'PY'
import os, random, sys
root = sys.argv[1]; r = random.Random(42)
words = ["layer", "image", "build", "cairn", "stack", "run", "app", "export", "cache", "launch"]
for i in range(8):
    with open(f"{root}/text/part{i}.txt", "w") as f:
        f.write("\n".join(" ".join(r.choice(words) for _ in range(12)) for _ in range(90000)))
for i in range(5000):
    d = f"{root}/small/d{i // 100:02d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i:04d}.txt", "w") as f: f.write(f"file {i}\n" * r.randint(1, 300))
PY
  echo 'web: /bin/sh -c "ls /workspace"' > "$1/Procfile"
}

# registry_start: a loopback docker-registry (storage under $W/registry, errors only, no access
# log) on a free port: R=127.0.0.1:PORT. Replaces the EXIT trap with one that stops it and
# removes $W.
registry_start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%s\n' "$W" "$port" > "$W/registry.yml"
  docker-registry serve "$W/registry.yml" >/dev/null 2>&1 & REGISTRY_PID=$!
  trap 'kill "$REGISTRY_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"' EXIT
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  R=127.0.0.1:$port
}
