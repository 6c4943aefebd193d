#!/usr/bin/env bash
# The main job: install what is missing, build, show what the library holds, and run a quick benchmark.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
"$root/build/release/tools/bitquant" list
echo
"$root/build/release/tools/bitquant" bench --quick
