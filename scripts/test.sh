#!/usr/bin/env bash
# The whole test suite: install what is missing, build, and run every ctest suite (each CPU variant this
# machine can run; the others report themselves skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
cd "$root"
.venv/bin/ctest --preset release
