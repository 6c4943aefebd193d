#!/usr/bin/env bash
# The CUDA check, for a machine with an NVIDIA GPU and its driver: the conformance suite through the CUDA
# kernels (host memory, device memory on a non-blocking stream, and both cut into 4096-element chunks), the
# typed suite (float16, bfloat16, int8 and bit-packed; host and device memory, and device memory chunked),
# the saved-bit suite (the same three ways),
# four threads at once, bitorch's own results through CUDA (where .venv-peers exists), the PTX through
# ptxas (where the toolkit is installed), and the benchmark on the GPU.
# Every step must run: a skip (no device, no driver) fails the script.
#
# Usage: tests/run_cuda.sh [BUILD_DIR]   (default build/release; built with scripts/build.sh if missing,
#                                         which needs Debian's archive and PyPI)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$root/build/release"}
if [ ! -x "$build/tests/test_conformance" ]; then
  "$root/scripts/build.sh"
  build="$root/build/release"
fi

step() {
  echo "== $*"
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "run_cuda: '$*' exited $rc (77: skipped, which this check does not allow)" >&2
    exit 1
  fi
}

"$build/tools/bitquant" list | sed -n '/GPU backends/,/^$/p'
step "$build/tests/test_conformance" cuda-host
step "$build/tests/test_conformance" cuda-device
step env BITQUANT_MAX_CHUNK=4096 "$build/tests/test_conformance" cuda-host
step env BITQUANT_MAX_CHUNK=4096 "$build/tests/test_conformance" cuda-device
step "$build/tests/test_typed" cuda-host
step "$build/tests/test_typed" cuda-device
step env BITQUANT_MAX_CHUNK=4096 BITQUANT_TEST_LARGE=0 "$build/tests/test_typed" cuda-device
step "$build/tests/test_saved" cuda-host
step "$build/tests/test_saved" cuda-device
step env BITQUANT_MAX_CHUNK=4096 BITQUANT_TEST_LARGE=0 "$build/tests/test_saved" cuda-device
step "$build/tests/test_threads" cuda
if [ -x "$root/.venv-peers/bin/python3" ]; then
  step "$root/.venv-peers/bin/python3" "$root/tools/peers.py" --lib "$build/libbitquant.so" --check-only --backend cuda
else
  echo "== no .venv-peers (scripts/bootstrap.sh makes it): the comparison with bitorch on CUDA is left out"
fi
if command -v ptxas >/dev/null || [ -x /usr/local/cuda/bin/ptxas ]; then
  step python3 "$root/tests/check_ptx.py" "$build"/kernels/bq_k_*_cuda.o
else
  echo "== ptxas not found: the PTX check is left to a machine with the CUDA toolkit"
fi
step "$build/tools/bitquant" bench --on cuda --sizes 2^16,2^20,2^24
echo "run_cuda: every CUDA check passed"
