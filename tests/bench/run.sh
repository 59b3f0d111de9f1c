#!/usr/bin/env bash
# Scan benchmark: `keychain-access scan` against the raw scan limit.
#
#   tests/bench/run.sh [SIZE_MB ...]        (default: 100 1000; MB = 10^6 bytes)
#
# For each size it generates a realistic capture (tests/bench/gen_capture.py:
# real eslogger line shapes, ~99% unrelated events, ~1% keychain ones),
# warms the page cache, then runs, REPEAT times each and interleaved:
#   cat FILE > /dev/null                              (I/O floor)
#   LC_ALL=C grep -c -F -e NEEDLE ... FILE            (the raw scan limit: the
#                                                      prefilter's own needles)
#   keychain-access scan --input FILE > /dev/null     (the real thing)
#   LC_ALL=C grep -c -F eychain FILE                  (for reference: one rare
#                                                      needle, memchr speed)
# each under /usr/bin/time -v (user/sys CPU and peak RSS); wall time is taken
# around the command with nanosecond clocks. It prints a Markdown table with
# MB/s, events/s, ratios against grep and cat, peak RSS, and the linearity of
# scan's cost across sizes. Captures are deleted after use (KEEP=1 keeps them).
#
# Environment:
#   BENCH_DIR   where captures go (default /tmp/kca-bench; needs SIZE_MB of
#               free space for the largest size, checked with df)
#   REPEAT      runs per tool and size (default 3; the median is reported)
#   SEED        generator seed (default 1)
#   EXEC_SHARE  share of exec+fork among unrelated events (default: the
#               proportions of samples/capture.ndjson, ~20%)
#   KEEP=1      keep the generated captures
#   NO_BUILD=1  do not run cargo build (use the binary already built)
#   CARGO_TARGET_DIR  as for cargo (the binary is looked up there)
#
# The needles are read from tables/src/scan.rs (PREFILTER_NEEDLES), so grep
# always searches exactly what the prefilter searches.
#
# Note: grep's output goes to a file, never to /dev/null: GNU grep notices
# /dev/null and stops at the first match.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
bench_dir=${BENCH_DIR:-/tmp/kca-bench}
repeat=${REPEAT:-3}
seed=${SEED:-1}
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/keychain-access

if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing GNU time (Debian package \`time\`)" >&2
        apt-get install -y time >/dev/null || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
    else
        echo "need /usr/bin/time (GNU time): apt-get install -y time" >&2
        exit 2
    fi
fi

if [ -z "${NO_BUILD:-}" ]; then
    (cd "$root" && cargo build --release -p keychain-access --bin keychain-access >&2)
fi
[ -x "$bin" ] || { echo "no binary at $bin (set CARGO_TARGET_DIR?)" >&2; exit 2; }

# The prefilter's relevance needles (tests/bench/lib.sh).
bench_prefilter_needles "$root"

mkdir -p "$bench_dir"
results=$bench_dir/results.tsv
: > "$results"
max_size=0
for s in "${sizes[@]}"; do
    s_int=${s%.*}
    [ "$s_int" -gt "$max_size" ] && max_size=$s_int
done
avail_mb=$(df -Pm "$bench_dir" | awk 'NR==2 {print $4}')
if [ "$avail_mb" -lt $((max_size + 512)) ]; then
    echo "not enough space in $bench_dir: ${avail_mb} MB free, need $((max_size + 512))" >&2
    exit 2
fi

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM" >&2
echo "needles (${#needles[@]}): ${needles[*]}" >&2
echo "load before: $(load)" >&2

# measure SIZE TOOL RUN CMD... : one run, appended to results.tsv.
measure() {
    local size=$1 tool=$2 run=$3
    shift 3
    local tv=$bench_dir/time.txt out=$bench_dir/out.txt t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$tv" "$@" > "$out" 2> "$bench_dir/stderr.txt"
    t1=$(date +%s%N)
    local user sys rss
    user=$(awk -F': ' '/User time/ {print $2}' "$tv")
    sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$tool" "$run" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", (b-a)/1e9}')" \
        "$user" "$sys" "$rss" >> "$results"
}

for size in "${sizes[@]}"; do
    cap=$bench_dir/capture-$size.ndjson
    echo "generating $size MB ..." >&2
    gen=$(python3 "$here/gen_capture.py" --size-mb "$size" --out "$cap" --seed "$seed" \
        ${EXEC_SHARE:+--exec-share "$EXEC_SHARE"})
    echo "$gen" > "$bench_dir/gen-$size.json"
    lines=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lines"])' "$gen")
    bytes=$(stat -c %s "$cap")
    printf '%s\tmeta\t0\t%s\t%s\t0\t0\n' "$size" "$bytes" "$lines" >> "$results"
    cat "$cap" > /dev/null   # warm the page cache: every tool reads from memory
    for run in $(seq 1 "$repeat"); do
        measure "$size" cat "$run" cat "$cap"
        measure "$size" grep "$run" env LC_ALL=C grep -c -F "${grep_args[@]}" "$cap"
        grep_count=$(cat "$bench_dir/out.txt")
        measure "$size" grep1 "$run" env LC_ALL=C grep -c -F eychain "$cap"
        measure "$size" scan "$run" "$bin" scan --input "$cap"
        summary=$(tail -n1 "$bench_dir/stderr.txt")
    done
    echo "$size MB: grep matched $grep_count lines; scan: $summary" >&2
    [ -n "${KEEP:-}" ] || rm -f "$cap"
done
echo "load after: $(load)" >&2
rm -f "$bench_dir/out.txt" "$bench_dir/time.txt" "$bench_dir/stderr.txt"

python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
meta, runs = {}, {}
for size, tool, run, a, b, c, d in rows:
    if tool == "meta":
        meta[size] = (int(a), int(b))
    else:
        runs.setdefault((size, tool), []).append((float(a), float(b) + float(c), int(d)))
def med(size, tool):
    r = runs[(size, tool)]
    return (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r), max(x[2] for x in r))
sizes = list(meta)
print("| size | tool | wall s (median) | CPU s (user+sys) | MB/s (wall) | events/s (wall) | peak RSS MB |")
print("|---:|---|---:|---:|---:|---:|---:|")
for s in sizes:
    nbytes, nlines = meta[s]
    for tool in ("cat", "grep1", "grep", "scan"):
        w, c, rss = med(s, tool)
        print(f"| {nbytes/1e6:.0f} MB | {tool} | {w:.3f} | {c:.2f} | {nbytes/1e6/w:,.0f} | {nlines/w:,.0f} | {rss/1024:.1f} |")
print()
print("| size | lines | scan/grep wall | scan/grep CPU | scan/cat wall | scan/cat CPU | scan/grep1 wall |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for s in sizes:
    nbytes, nlines = meta[s]
    sw, sc, _ = med(s, "scan"); gw, gc, _ = med(s, "grep"); cw, cc, _ = med(s, "cat")
    g1w, _, _ = med(s, "grep1")
    print(f"| {nbytes/1e6:.0f} MB | {nlines:,} | {sw/gw:.2f}x | {sc/max(gc,1e-3):.2f}x | {sw/cw:.1f}x | {sc/max(cc,1e-3):.1f}x | {sw/g1w:.1f}x |")
if len(sizes) >= 2:
    a, b = sizes[0], sizes[-1]
    (ab, _), (bb, _) = meta[a], meta[b]
    print()
    print(f"Linearity ({ab/1e6:.0f} MB -> {bb/1e6:.0f} MB, input x{bb/ab:.2f}):")
    for tool in ("cat", "grep1", "grep", "scan"):
        wa, ca, ra = med(a, tool); wb, cb, rb = med(b, tool)
        print(f"- {tool}: wall x{wb/wa:.2f}, CPU x{cb/max(ca,1e-3):.2f}, "
              f"CPU ns/byte {ca/ab*1e9:.2f} -> {cb/bb*1e9:.2f}, peak RSS {ra/1024:.1f} -> {rb/1024:.1f} MB")
EOF
echo "raw runs: $results" >&2
