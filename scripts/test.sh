#!/usr/bin/env bash
# The whole test suite: install what is missing, build, and run every ctest suite: on this x86-64
# machine for each CPU variant it can run (the others report themselves skipped), then the AArch64
# build under qemu-aarch64.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh
.venv/bin/ctest --preset release
.venv/bin/cmake --preset aarch64
.venv/bin/cmake --build --preset aarch64
.venv/bin/ctest --preset aarch64
