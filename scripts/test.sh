#!/usr/bin/env bash
# The whole test suite: install what is missing, build, and run every ctest suite: on this x86-64
# machine for each CPU variant it can run (the others report themselves skipped), then the Python
# package built and installed by pip and its tests, then the AArch64 build under qemu-aarch64, then the
# sanitizer builds (clang): the x86-64 suite under ASan+UBSan with the fuzzer's bounded runs, and the threaded
# tests under TSan (BITQUANT_TEST_SANITIZERS=0 leaves these two out).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh
.venv/bin/ctest --preset release
# The Python package as a user installs it: pip builds the wheel from this checkout (scikit-build-core runs
# CMake in an isolated build environment with the pinned Halide) into .venv-peers, and the package's tests
# run again, on that installed copy (from outside the source tree, so that Python imports the installed one).
.venv-peers/bin/python3 -m pip install --quiet --disable-pip-version-check "$root"
outside=$(mktemp -d)
trap 'rm -rf "$outside"' EXIT
(cd "$outside" && BITQUANT_TEST_REQUIRE_ALL=1 BITQUANT_TEST_INSTALLED=1 \
  "$root/.venv-peers/bin/python3" -m pytest -q -p no:cacheprovider "$root/python/tests")
.venv/bin/cmake --preset aarch64
.venv/bin/cmake --build --preset aarch64
.venv/bin/ctest --preset aarch64
if [ "${BITQUANT_TEST_SANITIZERS:-1}" != 0 ]; then
  for preset in asan-ubsan tsan; do
    .venv/bin/cmake --preset "$preset"
    .venv/bin/cmake --build --preset "$preset"
    .venv/bin/ctest --preset "$preset"
  done
fi
