#!/usr/bin/env bash
# bitquant beside the real bitorch, in one process (tools/peers.py): every quantization's forward and its
# backward through autograd, at n = 2^16, 2^20 and 2^24 with 1 and 2 threads, results checked to agree.
# Writes the table to the terminal, and peers.json and peers.png (GB/s against n for bitquant, the roofline,
# plain C and bitorch) to build/release/peers/. Extra arguments go to tools/peers.py (e.g. --quick).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
out="$root/build/release/peers"
mkdir -p "$out"
"$root/.venv-peers/bin/python3" "$root/tools/peers.py" --lib "$root/build/release/libbitquant.so" \
  --bench "$root/build/release/tools/bitquant" --json "$out/peers.json" --plot "$out/peers.png" "$@"
echo "peers: wrote $out/peers.json and $out/peers.png"
