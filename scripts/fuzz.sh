#!/usr/bin/env bash
# A long run of the libFuzzer harness (tests/fuzz_api.c) over the public API: builds the asan-ubsan preset and
# fuzzes for SECONDS (default 1800) with WORKERS processes (default 2) from the committed seed corpus.
# New inputs go to build/asan-ubsan/fuzz-corpus, anything found to build/asan-ubsan/fuzz-artifacts/; the
# summary at the end gives the executions and the coverage reached. Extra arguments go to libFuzzer.
#   scripts/fuzz.sh [SECONDS [WORKERS [libFuzzer flags...]]]
# To keep what a run found in the seed corpus (inputs that reach new coverage only):
#   build/asan-ubsan/tests/fuzz_api -merge=1 tests/fuzz/corpus build/asan-ubsan/fuzz-corpus
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-1800}
workers=${2:-2}
shift $(($# < 2 ? $# : 2))
scripts/bootstrap.sh
.venv/bin/cmake --preset asan-ubsan >/dev/null
.venv/bin/cmake --build --preset asan-ubsan --target fuzz_api
out=build/asan-ubsan
mkdir -p "$out/fuzz-corpus" "$out/fuzz-artifacts"
# Leaks are checked after every input (libFuzzer's own check); not again at each job's exit, where LSan's
# thread-stopping tracer crashed once (signal 11) with the job's threads winding down, which ended the run.
export ASAN_OPTIONS=detect_leaks=1:leak_check_at_exit=0:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions=tests/sanitizers/lsan.supp
exec "$out/tests/fuzz_api" -fork="$workers" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$out/fuzz-artifacts/" "$@" "$out/fuzz-corpus" tests/fuzz/corpus
