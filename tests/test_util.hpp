// Helpers shared by the tests.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <gumbel/gumbel.hpp>

namespace test {

using gumbel::Index;
using Md = gumbel::Matrix<double>;
using Vd = gumbel::Var<double>;
using Inputs = std::vector<Vd>;
using Fn = std::function<Vd(gumbel::Tape<double>&, const Inputs&)>;

/// Shapes every gradient test runs on: scalar, row, column, odd, a batch of 100.
struct Shape {
  Index rows, cols;
};
inline const std::vector<Shape> kShapes = {{1, 1}, {1, 7}, {7, 1}, {5, 3}, {100, 10}};

inline Md normal(Index rows, Index cols, std::uint64_t seed, double scale = 1.0) {
  gumbel::Generator gen(seed);
  return gen.normal<double>(rows, cols, 0.0, scale);
}

inline Md uniform(Index rows, Index cols, std::uint64_t seed, double lo, double hi) {
  gumbel::Generator gen(seed);
  return gen.uniform<double>(rows, cols, lo, hi);
}

/// The analytic gradient of f matches central differences to 1e-6.
inline void require_gradients(const Fn& f, const std::vector<Md>& inputs) {
  const gumbel::GradCheckReport report = gumbel::check_gradients(f, inputs);
  INFO(report.summary());
  CHECK(report.max_error < 1e-6);
}

/// The logistic function 1 / (1 + e^-x) in double: P(1) of a Bernoulli with logit x.
inline double logistic(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

/// An empty folder `<temp>/gumbel_test_<name>` for one test's files.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gumbel_test_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// True when /usr/bin/python3 imports `module` (numpy, torch). Where the build requires the
/// Python cross-checks (GUMBEL_REQUIRE_TORCH, set by the test command), a missing module fails
/// the calling test; elsewhere the test says it is skipped.
inline bool have_python(const std::string& module) {
  const std::string probe = "/usr/bin/python3 -c 'import " + module + "' > /dev/null 2>&1";
  if (std::system(probe.c_str()) == 0) return true;
#if defined(GUMBEL_REQUIRE_TORCH)
  FAIL("/usr/bin/python3 has no " << module
                                  << ", and this build requires the Python "
                                     "cross-checks (install python3-torch and python3-numpy)");
#else
  MESSAGE("skipped: /usr/bin/python3 has no " << module << " (install python3-" << module << ")");
#endif
  return false;
}
inline bool have_torch() {
  return have_python("torch");
}

/// A file's bytes (empty when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Writes `bytes` as the file `p`, replacing it.
inline void spill(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

/// The message of the exception thrown by f (empty if none), for checking error texts.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return {};
}

}  // namespace test
