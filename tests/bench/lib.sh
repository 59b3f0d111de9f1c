# Shared by the bench scripts (sourced, never run): the prefilter's needles,
# CPU time of a process, and a private work folder cleaned up at exit.

# bench_prefilter_needles ROOT: the prefilter's relevance needles, unescaped
# from tables/src/scan.rs (PREFILTER_NEEDLES), into the array `needles` and
# as grep options into `grep_args`, so a grep baseline searches exactly what
# the prefilter searches.
bench_prefilter_needles() {
    mapfile -t needles < <(python3 - "$1/tables/src/scan.rs" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
m = re.search(r'pub const PREFILTER_NEEDLES: &\[&str\] = &\[(.*?)\];', src, re.S)
if not m:
    sys.exit("PREFILTER_NEEDLES not found in scan.rs")
for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)):
    print(re.sub(r'\\(.)', r'\1', s))
EOF
    )
    [ ${#needles[@]} -gt 0 ] || { echo "no prefilter needles found in $1/tables/src/scan.rs" >&2; exit 2; }
    grep_args=()
    local n
    for n in "${needles[@]}"; do grep_args+=(-e "$n"); done
}

# cpu_ticks PID: user+system CPU of a live process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_work_dir PREFIX: a private (0700) folder in $TMPDIR as `work`; at
# exit the processes in `pids` are killed and the folder removed (KEEP=1
# keeps it). Short paths: socket paths inside must fit sun_path's 107 bytes.
bench_work_dir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    chmod 700 "$work"
    pids=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
