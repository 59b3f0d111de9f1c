#!/usr/bin/env bash
# Table benchmark: `generate` on keychain_access_events end to end through
# the Thrift socket, and ingest into the buffer.
#
#   tests/bench/table_bench.sh [ROWS ...]      (default: 100000 1000000)
#
# For each ROWS: build a buffer of ROWS real classified rows, 1000 per hour
# (so 1M rows span ~1000 hours), with `Store::insert` in batches of 10,000
# (the ingest figure); start the fake osqueryd extension manager
# (tests/fake_osqueryd) and the extension with a config pointing `database`
# at that buffer and no sources; then time, with osquery-rust-ng's generated
# Thrift client (extension/examples/table_bench.rs):
#   hour       REPEAT generates with a random one-hour `time` range
#              (time >= a AND time < b), a new connection per call as
#              osqueryd, with osqueryd's `colsUsed` for a query naming six
#              columns (COLS_USED)
#   hour_star  the same without colsUsed (every column: SELECT *)
#   hour_keep  the same as hour on one kept connection
#   all        no constraint, every column (returns the max_result_rows
#              cap, 10,000 rows, the largest answer)
#   unindexed  `path = '/nonexistent'` (no index: SQLite reads every row)
# and print p50/p95/max ms and rows returned; the extension's resident
# memory after each set of answers (VmRSS) and at its peak (VmHWM), its CPU
# time per call, and the peak live heap reported by the counting allocator
# (the binary is built with `--features count-alloc`).
#
# Environment: REPEAT (default 100), COLS_USED (default
# time,eid,pid,path,action,severity), BATCH (insert batch, default 10000),
# NO_BUILD=1, CARGO_TARGET_DIR as for cargo, PYTHON (default .venv/bin/python),
# KEEP=1 keeps the buffers (in $TMPDIR/kcatb.*).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(100000 1000000)
repeat=${REPEAT:-100}
batch=${BATCH:-10000}
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/keychain-access-extension
bench=$target_dir/release/examples/table_bench
python=${PYTHON:-$root/.venv/bin/python}
end=1754600400
cols_used=${COLS_USED:-time,eid,pid,path,action,severity}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

if [ -z "${NO_BUILD:-}" ]; then
    (cd "$root" && cargo build --release -p keychain-access --features count-alloc --bin keychain-access-extension --example table_bench >&2)
fi
[ -x "$python" ] || { echo "no $python: python3 -m venv .venv && .venv/bin/pip install -r tests/fake_osqueryd/requirements.txt" >&2; exit 2; }

# Short socket paths: sun_path holds 107 bytes.
bench_work_dir kcatb

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results=()
for rows in "${counts[@]}"; do
    d=$work/$rows
    mkdir -p "$d"
    chmod 700 "$d"
    db=$d/buffer.db
    echo "building $rows rows ..." >&2
    ingest=$("$bench" build-db --db "$db" --rows "$rows" --rows-per-hour 1000 --batch "$batch" --end "$end")
    echo "ingest $rows: $ingest" >&2
    from=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["time_from"])' "$ingest")

    cat > "$d/config.json" <<EOF
{"database": "$db",
 "retention": {"max_age_seconds": 3153600000, "max_rows": 10000000},
 "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false}, "files": []}}
EOF
    sock=$d/em
    "$python" "$root/tests/fake_osqueryd/fake_em.py" manager --socket "$sock" --max-seconds 900 \
        > "$d/manager.out" 2> "$d/manager.err" &
    mpid=$!
    pids+=("$mpid")
    for _ in $(seq 100); do grep -q '"listening"' "$d/manager.out" 2>/dev/null && break; sleep 0.1; done
    "$bin" --socket "$sock" --timeout 5 --interval 5 --config "$d/config.json" \
        > "$d/ext.out" 2> "$d/ext.err" &
    epid=$!
    pids+=("$epid")
    listen=""
    for _ in $(seq 200); do
        listen=$(python3 - "$d/manager.out" <<'EOF' 2>/dev/null || true
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "registered":
        print(e["listen_path"]); break
EOF
)
        [ -n "$listen" ] && break
        sleep 0.1
    done
    [ -n "$listen" ] || { echo "extension did not register; see $d/ext.err" >&2; cat "$d/ext.err" >&2; exit 1; }
    # The first retention pass over the buffer runs at start-up; let it finish.
    sleep 2
    results+=("$rows	ext_rss_idle	{\"vmrss_kb\": $(status_kb "$epid" VmRSS), \"vmhwm_kb\": $(status_kb "$epid" VmHWM)}")
    for mode in hour hour_star hour_keep all unindexed; do
        extra=()
        m=$mode
        case $mode in
            hour) extra=(--cols-used "$cols_used") ;;
            hour_star) m=hour ;;
            hour_keep) m=hour; extra=(--keep-connection --cols-used "$cols_used") ;;
        esac
        n=$repeat
        [ "$mode" = unindexed ] && n=$(( repeat < 20 ? repeat : 20 ))
        [ "$mode" = all ] && n=$(( repeat < 20 ? repeat : 20 ))
        t0=$(cpu_ticks "$epid")
        out=$("$bench" query --socket "$listen" --from "$from" --to "$end" --repeat "$n" --mode "$m" ${extra[@]+"${extra[@]}"})
        t1=$(cpu_ticks "$epid")
        hz=$(getconf CLK_TCK)
        cpu_ms=$(python3 -c "print(round(($t1 - $t0) * 1000 / $hz / ($n + 1), 2))")
        out=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(ext_cpu_ms_per_call=float(sys.argv[2]), vmrss_kb_after=int(sys.argv[3]), vmhwm_kb_after=int(sys.argv[4])); print(json.dumps(d))' \
            "$out" "$cpu_ms" "$(status_kb "$epid" VmRSS)" "$(status_kb "$epid" VmHWM)")
        echo "query $rows $mode: $out" >&2
        results+=("$rows	$mode	$out")
    done
    rss=$(status_kb "$epid" VmHWM)
    final=$(status_kb "$epid" VmRSS)
    "$python" "$root/tests/fake_osqueryd/fake_em.py" shutdown --socket "$listen" > /dev/null 2>&1 || kill "$epid" 2>/dev/null || true
    wait "$epid" 2>/dev/null || true
    heap=$(sed -n 's/.*heap: peak_live_bytes=\([0-9]*\) live_bytes_at_exit=\([0-9]*\).*/\1 \2/p' "$d/ext.err" | tail -1)
    results+=("$rows	ext_rss	{\"vmhwm_kb\": ${rss:-0}, \"vmrss_kb_final\": ${final:-0}, \"heap_peak_bytes\": ${heap% *}, \"heap_exit_bytes\": ${heap#* }}")
    results+=("$rows	ingest	$ingest")
    kill "$mpid" 2>/dev/null || true
    wait "$mpid" 2>/dev/null || true
    pids=()
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

printf '%s\n' "${results[@]}" > "$work/results.tsv"
python3 - "$work/results.tsv" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t", 2) for l in open(sys.argv[1]) if l.strip()]
labels = {"hour": "1-hour time range, colsUsed of 6 columns, new connection per call",
          "hour_star": "1-hour time range, every column (no colsUsed), new connection per call",
          "hour_keep": "1-hour time range, colsUsed of 6 columns, one kept connection",
          "all": "no constraint (capped at max_result_rows)",
          "unindexed": "path = x (unindexed: reads every row)"}
print("| rows stored | generate | calls | p50 ms | p95 ms | max ms | rows returned (min/p50/max) | extension CPU ms/call | RSS MB after |")
print("|---:|---|---:|---:|---:|---:|---|---:|---:|")
for n, mode, js in rows:
    if mode not in labels:
        continue
    d = json.loads(js)
    print(f"| {int(n):,} | {labels[mode]} | {d['calls']} | {d['ms_p50']:.2f} | {d['ms_p95']:.2f} | "
          f"{d['ms_max']:.2f} | {d['rows_min']:.0f}/{d['rows_p50']:.0f}/{d['rows_max']:.0f} | "
          f"{d['ext_cpu_ms_per_call']:.1f} | {d['vmrss_kb_after']/1024:.1f} |")
print()
print("| rows | insert batch | insert s | rows/s | batch ms p50/max | buffer MB |")
print("|---:|---:|---:|---:|---|---:|")
for n, mode, js in rows:
    if mode != "ingest":
        continue
    d = json.loads(js)
    print(f"| {d['rows']:,} | {d['batch']:,} | {d['insert_seconds']:.2f} | {d['insert_rows_per_second']:,.0f} | "
          f"{d['batch_ms_p50']:.1f}/{d['batch_ms_max']:.1f} | {d['db_bytes']/1e6:.0f} |")
print()
print("| rows stored | RSS MB idle (before answers) | peak RSS MB (VmHWM) | RSS MB after all answers | peak live heap MB (counting allocator) | live heap MB at exit |")
print("|---:|---:|---:|---:|---:|---:|")
idle = {n: json.loads(js) for n, mode, js in rows if mode == "ext_rss_idle"}
for n, mode, js in rows:
    if mode != "ext_rss":
        continue
    d = json.loads(js)
    print(f"| {int(n):,} | {idle.get(n, {}).get('vmrss_kb', 0)/1024:.1f} | {d['vmhwm_kb']/1024:.1f} | {d['vmrss_kb_final']/1024:.1f} | "
          f"{d['heap_peak_bytes']/2**20:.1f} | {d['heap_exit_bytes']/2**20:.1f} |")
EOF
