// Temperature schedules for the Gumbel-Softmax relaxation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "gumbel/core/error.hpp"

namespace gumbel {
namespace detail {

inline void require_schedule(const char* name, double tau0, double tau_min, double rate) {
  if (!(tau0 > 0) || !std::isfinite(tau0)) {
    fail<ValueError>(name, "tau0 = ", tau0, " must be positive and finite");
  }
  if (!(tau_min > 0) || !(tau_min <= tau0)) {
    fail<ValueError>(name, "tau_min = ", tau_min, " must be positive and at most tau0 = ", tau0);
  }
  if (!(rate >= 0) || !std::isfinite(rate)) {
    fail<ValueError>(name, "anneal rate = ", rate, " must be finite and non-negative");
  }
}

}  // namespace detail

/// The same temperature at every step.
struct ConstantTemperature {
  explicit ConstantTemperature(double value) : tau(value) {
    detail::require_schedule("ConstantTemperature", value, value, 0);
  }
  double operator()(std::int64_t /*step*/) const { return tau; }
  double tau;
};

/// tau = max(tau_min, tau0 exp(-rate t)) with t the global step rounded down to a multiple of
/// `interval`: the temperature changes every `interval` steps (Jang et al. 2017 anneal every
/// N = 500 or 1000 steps; interval 1 changes it every step).
struct ExponentialDecay {
  ExponentialDecay(double initial, double minimum, double decay, std::int64_t every = 1)
      : tau0(initial), tau_min(minimum), rate(decay), interval(every) {
    detail::require_schedule("ExponentialDecay", tau0, tau_min, rate);
    if (interval < 1)
      detail::fail<ValueError>("ExponentialDecay", "interval = ", interval, " must be at least 1");
  }
  double operator()(std::int64_t step) const {
    const std::int64_t t = step - step % interval;
    return std::max(tau_min, tau0 * std::exp(-rate * static_cast<double>(t)));
  }
  double tau0, tau_min, rate;
  std::int64_t interval;
};

/// The schedule of the reference VAE articles: the temperature restarts at tau0 every epoch,
/// and after each batch whose index b satisfies b % interval == 1 it becomes
/// max(tau_min, tau * exp(-rate * b)). `operator()(b)` is the temperature used for batch b of
/// an epoch.
struct EpochRestartDecay {
  EpochRestartDecay(double initial, double minimum, double decay, std::int64_t every = 100)
      : tau0(initial), tau_min(minimum), rate(decay), interval(every) {
    detail::require_schedule("EpochRestartDecay", tau0, tau_min, rate);
    if (interval < 2)
      detail::fail<ValueError>("EpochRestartDecay", "interval = ", interval, " must be at least 2");
  }
  double operator()(std::int64_t batch) const {
    double tau = tau0;
    for (std::int64_t b = 1; b < batch; b += interval)
      tau = std::max(tau_min, tau * std::exp(-rate * double(b)));
    return tau;
  }
  double tau0, tau_min, rate;
  std::int64_t interval;
};

}  // namespace gumbel
