#!/usr/bin/env bash
# Runs every test: a GCC build (warnings are errors), a clang build (warnings are errors) and an
# AddressSanitizer + UndefinedBehaviorSanitizer build, each through ctest. Build trees go to
# build-test-*/ beside this script's repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

run_suite() {  # name, then extra cmake arguments
  local name=$1; shift
  echo "== ${name}: configure and build"
  cmake -S . -B "build-test-${name}" -DGUMBEL_WERROR=ON -DGUMBEL_BUILD_TESTS=ON \
        -DGUMBEL_BUILD_EXAMPLES=ON "$@" >/dev/null
  cmake --build "build-test-${name}" -j "${jobs}"
  echo "== ${name}: ctest"
  (cd "build-test-${name}" && ctest -j "${jobs}" --output-on-failure)
}

run_suite gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DGUMBEL_BUILD_BENCHMARKS=ON
run_suite clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DGUMBEL_BUILD_BENCHMARKS=ON
# -O1 keeps the sanitized suite fast enough; Eigen's own asserts stay on (no NDEBUG).
run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
          -DCMAKE_CXX_COMPILER=clang++ -DGUMBEL_SANITIZE=ON
echo "== all test suites passed"
