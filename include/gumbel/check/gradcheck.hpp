// Finite-difference gradient checking for users' own ops and models.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "gumbel/core/tape.hpp"
#include "gumbel/ops/elementwise.hpp"
#include "gumbel/ops/reduce.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel {

struct GradCheckOptions {
  double step = 1e-6;       ///< central-difference step, relative to max(1, |x|)
  double tolerance = 1e-6;  ///< largest accepted error
  std::uint64_t seed = 7;   ///< seed of the random weights that project the output to a scalar
};

struct GradCheckReport {
  bool passed = true;
  double max_error = 0;   ///< |analytic - numeric| / max(1, |analytic|, |numeric|)
  std::size_t input = 0;  ///< where the largest error is
  Index row = 0;
  Index col = 0;
  double analytic = 0;
  double numeric = 0;

  std::string summary() const {
    std::ostringstream out;
    out << (passed ? "passed" : "FAILED") << ": max error " << max_error << " at input " << input
        << " (" << row << ", " << col << "): analytic " << analytic << ", numeric " << numeric;
    return out.str();
  }
};

/// Compares the tape's gradient of `f` with central finite differences, in double.
///
/// `f(tape, vars)` builds any output from the variables made of `inputs`; the check projects it
/// to the scalar sum(w * f) with fixed random weights w, so every output element and every
/// input element is exercised. The error of an entry is relative where gradients exceed 1 and
/// absolute below.
template <class F>
GradCheckReport check_gradients(F&& f, const std::vector<Matrix<double>>& inputs,
                                GradCheckOptions options = {}) {
  Tape<double> tape;
  std::vector<Var<double>> vars;
  vars.reserve(inputs.size());
  for (const auto& x : inputs) vars.push_back(tape.variable(x));
  const Var<double> out = f(tape, static_cast<const std::vector<Var<double>>&>(vars));
  Generator gen(options.seed);
  const Matrix<double> weights = gen.normal<double>(out.rows(), out.cols());
  tape.backward(sum(mul(out, tape.constant(weights))));

  std::vector<Matrix<double>> analytic;
  analytic.reserve(vars.size());
  for (const auto& v : vars) {
    analytic.push_back(v.requires_grad() ? Matrix<double>(v.grad())
                                         : Matrix<double>::Zero(v.rows(), v.cols()));
  }

  std::vector<Matrix<double>> point = inputs;
  Tape<double> probe;  // one tape, cleared for every evaluation
  std::vector<Var<double>> probe_vars;
  const auto projected = [&] {
    probe.clear();
    probe_vars.clear();
    for (const auto& x : point) probe_vars.push_back(probe.constant(x));
    const Var<double> y = f(probe, static_cast<const std::vector<Var<double>>&>(probe_vars));
    return (y.value().array() * weights.array()).sum();
  };

  GradCheckReport report;
  bool seen_any = false;
  const auto record = [&](double error, std::size_t i, Index r, Index c, double a, double numeric) {
    if (error > report.max_error || !seen_any) {
      seen_any = true;
      report = {true, error, i, r, c, a, numeric};
    }
  };
  for (std::size_t i = 0; i < point.size(); ++i) {
    for (Index r = 0; r < point[i].rows(); ++r) {
      for (Index c = 0; c < point[i].cols(); ++c) {
        const double x0 = point[i](r, c);
        // An infinite entry (a -inf mask) has no neighbourhood: its gradient must only be finite.
        const double a = analytic[i](r, c);
        if (!std::isfinite(x0)) {
          record(std::isfinite(a) ? 0.0 : INFINITY, i, r, c, a, 0.0);
          continue;
        }
        const double h = options.step * std::max(1.0, std::abs(x0));
        point[i](r, c) = x0 + h;
        const double up = projected();
        point[i](r, c) = x0 - h;
        const double down = projected();
        point[i](r, c) = x0;
        const double numeric = (up - down) / (2 * h);
        const double error =
            std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
        record(std::isnan(error) ? INFINITY : error, i, r, c, a, numeric);
      }
    }
  }
  report.passed = report.max_error <= options.tolerance;
  return report;
}

}  // namespace gumbel
