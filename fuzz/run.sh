#!/usr/bin/env bash
# Build and run the fuzz targets one after another (one core), each for
# SECONDS seconds (default 240) or RUNS executions, whichever comes first.
# Crashes land in fuzz/artifacts/<target>/; libFuzzer's final stats (exec
# count, peak RSS) are printed per target.
# Usage: fuzz/run.sh [target...]      env: SECONDS_PER_TARGET, RUNS, TARGET_DIR
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain the
# nightly-only flags are allowed with RUSTC_BOOTSTRAP=1 (set here).
set -euo pipefail
cd "$(dirname "$0")"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(es_line unified_log_line security_argv redact constraint_context)
secs="${SECONDS_PER_TARGET:-240}"
runs="${RUNS:--1}"
tdir="${TARGET_DIR:-target}"
export RUSTC_BOOTSTRAP=1
# -a: debug assertions (integer overflow, slice bounds); -s none: the crate
# has no unsafe code, so AddressSanitizer would only slow the search down.
cargo fuzz build -a -s none --target-dir "$tdir" >/dev/null
[ -d corpus/es_line ] || ./seed.sh
for t in "${targets[@]}"; do
  mkdir -p "artifacts/$t" "corpus/$t"
  echo "== $t (${secs}s, runs ${runs})"
  start=$(date +%s)
  set +e
  "$tdir/x86_64-unknown-linux-gnu/release/$t" "corpus/$t" \
    -max_len=16384 -timeout=10 -rss_limit_mb=1024 -max_total_time="$secs" -runs="$runs" \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>"/tmp/fuzz-$t.log"
  rc=$?
  set -e
  end=$(date +%s)
  grep -E "^stat::(number_of_executed_units|peak_rss_mb|new_units_added)|^Done|SUMMARY" "/tmp/fuzz-$t.log" || true
  echo "exit $rc after $((end - start)) s; corpus $(ls "corpus/$t" | wc -l) inputs; artifacts $(ls "artifacts/$t" | wc -l)"
done
