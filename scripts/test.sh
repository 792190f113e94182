#!/usr/bin/env bash
# Runs every test, in four builds whose warnings are errors, each with a job of its own:
#   gcc       g++ -march=native with OpenMP: every test, the benchmarks (and their allocation
#             counts), the MPI programs on 1 to 4 ranks, the consumer's three ways;
#   portable  clang++ without -march=native and without OpenMP: the library's tests on the
#             generic kernels and clang's optimiser, and the one-thread build, each test file
#             compiled alone (the other builds compile them in batches, GUMBEL_UNITY_TESTS);
#   tsan      clang++ with ThreadSanitizer: the library's and the example's test programs;
#   sanitize  clang++ with AddressSanitizer + UndefinedBehaviorSanitizer: every test and example
#             (the docs' code blocks run in the gcc build), the fuzzers, the consumer through
#             pkg-config.
# Build trees go to build-test-*/ beside this script's repository.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The PyTorch cross-checks (optimizers against torch.optim, state_dicts both ways, densities, the
# docs' Python blocks) fail rather than skip in these builds: python3-torch is installed above.
jobs=$(nproc)

run_suite() {  # name, then extra cmake arguments
  local name=$1; shift
  echo "== ${name}: configure and build"
  cmake -S . -B "build-test-${name}" -DGUMBEL_WERROR=ON -DGUMBEL_BUILD_TESTS=ON \
        -DGUMBEL_BUILD_EXAMPLES=ON -DGUMBEL_REQUIRE_TORCH=ON "$@" >/dev/null
  cmake --build "build-test-${name}" -j "${jobs}"
  echo "== ${name}: ctest"
  (cd "build-test-${name}" && ctest -j "${jobs}" --output-on-failure)
}

run_suite gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DGUMBEL_BUILD_BENCHMARKS=ON

# The portable kernels: the library's tests built by clang without -march=native, so that the
# generic float paths (sampling, noise, exp and log on SSE2 packets) run on this CPU as well;
# and without OpenMP, so that the one-thread build is tested too. Its test files compile one by
# one, so that each stays complete on its own.
echo "== portable: configure and build"
cmake -S . -B build-test-portable -DGUMBEL_WERROR=ON -DGUMBEL_BUILD_TESTS=ON \
      -DGUMBEL_BUILD_EXAMPLES=OFF -DGUMBEL_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER=clang++ -DGUMBEL_NATIVE=OFF -DGUMBEL_OPENMP=OFF -DGUMBEL_MPI=OFF \
      -DGUMBEL_UNITY_TESTS=OFF -DGUMBEL_REQUIRE_TORCH=ON >/dev/null
cmake --build build-test-portable -j "${jobs}" --target gumbel_tests
echo "== portable: tests"
(cd build-test-portable/tests && ./gumbel_tests)

# ThreadSanitizer over the library's and the example's test programs. LLVM's OpenMP runtime is
# not instrumented: Archer, its OpenMP tool, tells TSan about the runtime's synchronisation, and
# ignore_noninstrumented_modules drops what TSan sees inside the runtime itself. Nothing in the
# project's own code is suppressed.
echo "== tsan: configure and build"
cmake -S . -B build-test-tsan -DGUMBEL_WERROR=ON -DGUMBEL_BUILD_TESTS=ON -DGUMBEL_BUILD_EXAMPLES=ON \
      -DGUMBEL_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_CXX_COMPILER=clang++ \
      -DGUMBEL_TSAN=ON -DGUMBEL_MPI=OFF -DGUMBEL_REQUIRE_TORCH=ON >/dev/null
cmake --build build-test-tsan -j "${jobs}" --target gumbel_tests vae_tests
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so | sort -V | tail -n 1)
echo "== tsan: tests (OpenMP tool ${archer})"
for program in gumbel_tests vae_tests; do
  (cd build-test-tsan/tests && OMP_TOOL_LIBRARIES="${archer}" \
     TSAN_OPTIONS="ignore_noninstrumented_modules=1 halt_on_error=1 exitcode=66" "./${program}")
done

# -O1 keeps the sanitized suite fast enough; Eigen's own asserts stay on (no NDEBUG). Both
# sanitizer builds keep line tables only (file and line in every report's stack, a sixth less
# compile time than full debug information). The
# libFuzzer targets (IDX reader, checkpoint loader) run 30 s each inside this ctest. The MPI
# programs are the GCC suite's (MPI's own libraries are not instrumented), and so are the docs'
# code blocks (each a whole program on the umbrella header, about a minute apiece to compile
# with the sanitizers, which kept the whole script near its 45-minute budget). The consumer test
# compiles a downstream program through pkg-config with clang++.
run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
          -DCMAKE_CXX_COMPILER=clang++ -DGUMBEL_SANITIZE=ON -DGUMBEL_FUZZ=ON \
          -DGUMBEL_CONSUMER_WAYS=pkg-config -DGUMBEL_FUZZ_SECONDS=30 -DGUMBEL_MPI=OFF \
          -DGUMBEL_DOC_SNIPPETS=OFF
echo "== all test suites passed"
