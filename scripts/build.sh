#!/usr/bin/env bash
# Installs what is missing, then configures and builds the `release` preset (build/release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
.venv/bin/cmake --preset release
.venv/bin/cmake --build --preset release
