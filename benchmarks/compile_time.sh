#!/usr/bin/env bash
# Compile times, in seconds of wall clock, with g++ -O2 -std=c++17 (CXX and CXXFLAGS override):
# the umbrella header alone, and the VAE example's translation units that hold a full training
# step (model.cpp: the forward pass; train.cpp: the loop, backward and Adam). Each is compiled
# three times; the median is printed. Run on a quiet machine: other work inflates the figures.
#   bash benchmarks/compile_time.sh [build dir with include/gumbel/version.hpp, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cxx=${CXX:-g++}
read -r -a flags <<< "${CXXFLAGS:--O2}"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
echo '#include <gumbel/gumbel.hpp>' > "${work}/umbrella.cpp"
includes=(-Iinclude -I"${build}/include" -Iexamples/vae_mnist -Iexamples/common
          -isystem /usr/include/eigen3)

median_ms() {  # a source file: the median of three compile times, in milliseconds
  local times=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s%N)
    "${cxx}" -std=c++17 "${flags[@]}" "${includes[@]}" -c "$1" -o "${work}/out.o"
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 2p
}

echo "compiler: $(${cxx} --version | head -n 1), flags: ${flags[*]}"
for source in "${work}/umbrella.cpp" examples/vae_mnist/model.cpp examples/vae_mnist/train.cpp; do
  ms=$(median_ms "${source}")
  printf '%-16s %3d.%d s\n' "$(basename "${source}")" "$((ms / 1000))" "$((ms % 1000 / 100))"
done
