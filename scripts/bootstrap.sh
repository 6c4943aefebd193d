#!/usr/bin/env bash
# Installs what bitquant needs to build and test, and nothing twice: Debian packages (when missing), a
# Python virtual environment in .venv with the pinned Halide wheel, CMake and Ninja, and one in .venv-peers
# with the real bitorch (0.4.1, without its dependencies: Debian's torch, pandas and matplotlib serve) and
# pytest, for the side-by-side comparison (tools/peers.py) and the Python package's tests.
# Usage: scripts/bootstrap.sh    (idempotent; run from anywhere)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(build-essential pkg-config python3 python3-venv gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user
          pocl-opencl-icd ocl-icd-opencl-dev clinfo python3-torch python3-pandas python3-matplotlib
          clang libclang-rt-14-dev llvm)  # the last three: the sanitizer presets and the fuzzer (libFuzzer, symbolizer)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

venv="$root/.venv"
requirements="$root/scripts/requirements.txt"
stamp="$venv/.bitquant-requirements"
if [ ! -x "$venv/bin/python3" ]; then
  echo "bootstrap: creating $venv"
  /usr/bin/python3 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$stamp"; then
  echo "bootstrap: installing $(tr '\n' ' ' < "$requirements")into $venv"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

# bitorch on Debian's torch: the venv sees the system's packages; bitorch's own pins would pull another torch.
# The Python package's tests run here too, so it also gets pytest (scripts/requirements-peers.txt).
peers="$root/.venv-peers"
peers_requirements="$root/scripts/requirements-peers.txt"
peers_stamp="$peers/.bitquant-peers"
if ! cmp -s "$peers_requirements" "$peers_stamp"; then
  echo "bootstrap: setting up $peers: bitorch==0.4.1 on Debian's torch, $(tr '\n' ' ' < "$peers_requirements")"
  [ -x "$peers/bin/python3" ] || /usr/bin/python3 -m venv --system-site-packages "$peers"
  "$peers/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps bitorch==0.4.1
  "$peers/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$peers_requirements"
  cp "$peers_requirements" "$peers_stamp"
fi
