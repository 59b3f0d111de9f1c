#!/usr/bin/env bash
# CPU cost of the extension's live path per eslogger line, measured on the
# whole process: the real binary in extension mode (fake osqueryd manager)
# tails a generated eslogger capture through its file source, which runs the
# same path as the eslogger source after the pipe: line splitting, prefilter,
# parse, classify, the process cache, SQLite insert with the offset commit.
#
#   tests/bench/live_cpu.sh [SIZE_MB ...]        (default: 300)
#
# For each size and each mix (EXEC_SHARES, default "0.03 0.20": the share of
# exec+fork events; 1% keychain events; the rest opens, closes, ... in the
# proportions of samples/capture.ndjson, see gen_capture.py), it reports the
# extension's user+system CPU from /proc/PID/stat between registration and
# the moment `keychain_access_status` shows every line read, per line and per
# million lines, and the share of one core at a range of event rates.
# Baseline, measured in the same run on the same capture: the CPU of
# `LC_ALL=C grep -c -F` with the prefilter's needles (read from
# tables/src/scan.rs, as tests/bench/run.sh does), before and after the
# extension's run; the extension's CPU is also reported as a ratio to it, a
# figure that carries across machines and load better than seconds.
# eslogger's own cost (serialising every event to JSON) is not in these
# figures and cannot be measured off a Mac.
#
# Environment: EXEC_SHARES, NO_BUILD=1, CARGO_TARGET_DIR, PYTHON (default
# .venv/bin/python), KEEP=1 keeps the work directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(300)
shares=(${EXEC_SHARES:-0.03 0.20})
target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/release/keychain-access-extension
python=${PYTHON:-$root/.venv/bin/python}
fake=$root/tests/fake_osqueryd/fake_em.py

if [ -z "${NO_BUILD:-}" ]; then
    (cd "$root" && cargo build --release -p keychain-access --bin keychain-access-extension >&2)
fi
[ -x "$python" ] || { echo "no $python: python3 -m venv .venv && .venv/bin/pip install -r tests/fake_osqueryd/requirements.txt" >&2; exit 2; }

bench_work_dir kcalive
hz=$(getconf CLK_TCK)
bench_prefilter_needles "$root"
# CPU seconds (user+system) of grep over FILE; output to a file, never
# /dev/null (GNU grep stops at the first match when it sees /dev/null).
grep_cpu() {
    python3 -c 'import resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    subprocess.run(sys.argv[2:], stdout=out, check=False)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.3f}")' "$1.grep.out" env LC_ALL=C grep -c -F "${grep_args[@]}" "$1"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
results=()
for size in "${sizes[@]}"; do
    for share in "${shares[@]}"; do
        d=$work/$size-$share
        mkdir -p "$d/db"
        chmod 700 "$d" "$d/db"
        cap=$d/capture.ndjson
        python3 "$here/gen_capture.py" --size-mb "$size" --exec-share "$share" --out "$cap" >&2
        lines=$(wc -l < "$cap")
        cat "$cap" > /dev/null   # page cache: measure CPU, not the disk
        grep_before=$(grep_cpu "$cap")
        cat > "$d/config.json" <<CFG
{"database": "$d/db/buffer.db",
 "retention": {"max_age_seconds": 3153600000, "max_rows": 10000000},
 "sources": {"eslogger": {"enabled": false}, "log_stream": {"enabled": false}, "files": ["$cap"]}}
CFG
        sock=$d/em
        "$python" "$fake" manager --socket "$sock" --max-seconds 900 > "$d/manager.out" 2> "$d/manager.err" &
        mpid=$!
        pids+=("$mpid")
        for _ in $(seq 100); do grep -q '"listening"' "$d/manager.out" 2>/dev/null && break; sleep 0.1; done
        t_start=$(date +%s.%N)
        "$bin" --socket "$sock" --timeout 5 --interval 5 --config "$d/config.json" > "$d/ext.out" 2> "$d/ext.err" &
        epid=$!
        pids+=("$epid")
        listen=""
        for _ in $(seq 200); do
            listen=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "registered": print(e["listen_path"]); break' "$d/manager.out" 2>/dev/null || true)
            [ -n "$listen" ] && break
            sleep 0.05
        done
        [ -n "$listen" ] || { echo "extension did not register; see $d/ext.err" >&2; cat "$d/ext.err" >&2; exit 1; }
        while :; do
            st=$("$python" "$fake" generate --table keychain_access_status --socket "$listen")
            read_n=$(python3 -c 'import json,sys
rows = json.loads(sys.argv[1])["response"]
print(next((r["lines_read"] for r in rows if r["source"].startswith("file:")), 0))' "$st")
            [ "$read_n" -ge "$lines" ] && break
            sleep 0.2
        done
        ticks=$(cpu_ticks "$epid")
        t_end=$(date +%s.%N)
        rows=$(python3 -c 'import json,sys
rows = json.loads(sys.argv[1])["response"]
print(next((r["rows_stored"] for r in rows if r["source"].startswith("file:")), 0))' "$st")
        results+=("$size	$share	$lines	$ticks	$rows	$(python3 -c "print($t_end - $t_start)")	$(stat -c %s "$cap")")
        "$python" "$fake" shutdown --socket "$listen" > /dev/null 2>&1 || kill "$epid" 2>/dev/null || true
        wait "$epid" 2>/dev/null || true
        kill "$mpid" 2>/dev/null || true
        wait "$mpid" 2>/dev/null || true
        pids=()
        grep_after=$(grep_cpu "$cap")
        results[-1]+="	$(python3 -c "print(($grep_before + $grep_after) / 2)")"
        rm -f "$cap" "$cap.grep.out"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

printf '%s\n' "${results[@]}" > "$work/results.tsv"
python3 - "$work/results.tsv" "$hz" <<'PY'
import sys
hz = float(sys.argv[2])
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| capture MB | exec+fork share | lines | rows stored | extension CPU s | wall s | CPU µs per line | CPU s per million lines | grep CPU s (baseline) | extension / grep CPU |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
per = []
for size, share, lines, ticks, stored, wall, nbytes, grep in rows:
    cpu = float(ticks) / hz
    us = cpu / int(lines) * 1e6
    per.append((share, us))
    ratio = f"{cpu / float(grep):.2f}x" if float(grep) > 0 else "n/a"
    print(f"| {float(nbytes)/1e6:.0f} | {float(share):.0%} | {int(lines):,} | {int(stored):,} | {cpu:.2f} | {float(wall):.2f} | {us:.2f} | {us:.2f} | {float(grep):.2f} | {ratio} |")
print()
rates = [1000, 2000, 5000, 10000, 20000, 50000]
print("| events/s | " + " | ".join(f"share of one core, {float(s):.0%} exec+fork" for s, _ in per) + " |")
print("|---:|" + "---:|" * len(per))
for r in rates:
    print(f"| {r:,} | " + " | ".join(f"{r * us / 1e6:.2%}" for _, us in per) + " |")
PY
