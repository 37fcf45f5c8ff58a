# Shared by the benchmarks: `source bench/lib.sh` from the repository root.

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m() { printf '%s\n' "$@" | median; }

# timeit CMD...: wall seconds; a failed command stops the whole benchmark, its stderr shown.
timeit() {
  local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W_LOG" || { echo "FAILED: $*" >&2; cat "$W_LOG" >&2; kill $$; exit 1; }
  e=$(date +%s.%N); echo "$e - $s" | bc -l
}

# bench_setup NAME [buildah]: the static lifecycle, a release cairn ($CAIRN), a work directory $W
# (lowercase: buildah names pulled images after the path) holding CAIRN_HOME, removed on exit;
# with buildah, $BUILDAH (vfs storage under $W), installed when missing.
bench_setup() {
  [ -x .build/static-bin/lifecycle ] || scripts/build-static >/dev/null
  swift build -c release --product cairn >/dev/null
  CAIRN=$PWD/.build/release/cairn
  export CAIRN_LIFECYCLE_BIN=$PWD/.build/static-bin
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
