#!/usr/bin/env bash
# bitquant beside the real bitorch, in one process, through the Python package (tools/peers.py): every
# quantization's forward and its backward through autograd, bitorch's own and under bitquant.bitorch.patch(),
# beside bitquant.Quantizer alone, at n = 2^16, 2^20 and 2^24 with 1 and 2 threads, results checked to agree;
# then one training step of a small bitorch network without and with the patch, and its quantization's share.
# Writes the tables to the terminal, and peers.json and peers.png (GB/s against n for bitorch, bitorch
# patched, the roofline and plain C) to build/release/peers/. Extra arguments go to tools/peers.py (e.g.
# --quick, --no-train).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
out="$root/build/release/peers"
mkdir -p "$out"
"$root/.venv-peers/bin/python3" "$root/tools/peers.py" --lib "$root/build/release/libbitquant.so" \
  --bench "$root/build/release/tools/bitquant" --json "$out/peers.json" --plot "$out/peers.png" "$@"
echo "peers: wrote $out/peers.json and $out/peers.png"
