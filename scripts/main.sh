#!/usr/bin/env bash
# The main job: installs the Debian packages, builds the examples in Release and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGUMBEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)"
./build/examples/categorical_fit/categorical_fit
