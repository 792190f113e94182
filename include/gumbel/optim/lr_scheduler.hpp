// Learning-rate schedules with PyTorch's semantics (torch.optim.lr_scheduler): each group's rate
// is its rate at construction (its base) times a factor of the epoch count, which step()
// advances (call it once per epoch, or per step, after the optimizer's step). The factors are
// PyTorch's closed forms; its recursive updates agree with them to rounding.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gumbel/optim/optimizer.hpp"

namespace gumbel::optim {

template <class T>
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;

  /// Advances the epoch and sets every group's rate. A rate that is not finite in T (a gamma
  /// above 1 for long enough) is a ValueError naming the schedule; the epoch and every rate
  /// then stay as they were.
  void step() {
    set_rates(epoch_ + 1);
    ++epoch_;
  }
  std::int64_t epoch() const { return epoch_; }
  /// The rate of a group at the current epoch.
  T lr(std::size_t group = 0) const { return optimizer_.lr(group); }

 protected:
  LRScheduler(const char* name, Optimizer<T>& optimizer) : name_(name), optimizer_(optimizer) {
    for (std::size_t g = 0; g < optimizer.groups(); ++g) base_.push_back(optimizer.lr(g));
  }
  /// The rate of a group with base rate `base` at `epoch`.
  virtual double rate(double base, std::int64_t epoch) const = 0;
  /// Sets the rates of epoch 0 (constructors of derived classes call it, as PyTorch's do).
  void apply() { set_rates(epoch_); }

 private:
  void set_rates(std::int64_t epoch) {
    for (std::size_t g = 0; g < base_.size(); ++g) {  // every rate checked before any is set
      const double r = rate(double(base_[g]), epoch);
      if (!(r >= 0 && r <= double(std::numeric_limits<T>::max()))) {
        gumbel::detail::fail<ValueError>(name_, "the learning rate of group ", g, " at epoch ",
                                         epoch, " would be ", r, ", not a finite rate in ",
                                         sizeof(T) == 4 ? "float" : "double");
      }
    }
    for (std::size_t g = 0; g < base_.size(); ++g) {
      optimizer_.set_lr(g, T(rate(double(base_[g]), epoch)));
    }
  }

  const char* name_;
  Optimizer<T>& optimizer_;
  std::vector<T> base_;
  std::int64_t epoch_ = 0;
};

/// base * gamma^floor(epoch / step_size)
template <class T>
class StepLR : public LRScheduler<T> {
 public:
  StepLR(Optimizer<T>& optimizer, std::int64_t step_size, double gamma = 0.1)
      : LRScheduler<T>("StepLR", optimizer), step_size_(step_size), gamma_(gamma) {
    if (step_size < 1)
      gumbel::detail::fail<ValueError>("StepLR", "step_size = ", step_size, " must be >= 1");
    detail::require_range("StepLR", "gamma", gamma, 0.0, false, double(INFINITY), true);
    this->apply();
  }

 private:
  double rate(double base, std::int64_t epoch) const override {
    return base * std::pow(gamma_, double(epoch / step_size_));
  }
  std::int64_t step_size_;
  double gamma_;
};

/// base * gamma^epoch
template <class T>
class ExponentialLR : public LRScheduler<T> {
 public:
  ExponentialLR(Optimizer<T>& optimizer, double gamma)
      : LRScheduler<T>("ExponentialLR", optimizer), gamma_(gamma) {
    detail::require_range("ExponentialLR", "gamma", gamma, 0.0, false, double(INFINITY), true);
    this->apply();
  }

 private:
  double rate(double base, std::int64_t epoch) const override {
    return base * std::pow(gamma_, double(epoch));
  }
  double gamma_;
};

/// eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2, for epoch <= t_max (then it
/// rises again along the cosine, as PyTorch's closed form)
template <class T>
class CosineAnnealingLR : public LRScheduler<T> {
 public:
  CosineAnnealingLR(Optimizer<T>& optimizer, std::int64_t t_max, double eta_min = 0)
      : LRScheduler<T>("CosineAnnealingLR", optimizer), t_max_(t_max), eta_min_(eta_min) {
    if (t_max < 1)
      gumbel::detail::fail<ValueError>("CosineAnnealingLR", "t_max = ", t_max, " must be >= 1");
    detail::require_range("CosineAnnealingLR", "eta_min", eta_min, 0.0, false, double(INFINITY),
                          true);
    this->apply();
  }

 private:
  double rate(double base, std::int64_t epoch) const override {
    const double pi = 3.14159265358979323846;
    return eta_min_ + (base - eta_min_) * (1 + std::cos(pi * double(epoch) / double(t_max_))) / 2;
  }
  std::int64_t t_max_;
  double eta_min_;
};

/// Linear warm-up (PyTorch's LinearLR): base * (start + (end - start) min(epoch, total) / total)
template <class T>
class LinearLR : public LRScheduler<T> {
 public:
  LinearLR(Optimizer<T>& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           std::int64_t total_iters = 5)
      : LRScheduler<T>("LinearLR", optimizer),
        start_(start_factor),
        end_(end_factor),
        total_(total_iters) {
    detail::require_range("LinearLR", "start_factor", start_factor, 0.0, true, 1.0, false);
    detail::require_range("LinearLR", "end_factor", end_factor, 0.0, false, 1.0, false);
    if (total_iters < 1)
      gumbel::detail::fail<ValueError>("LinearLR", "total_iters = ", total_iters, " must be >= 1");
    this->apply();
  }

 private:
  double rate(double base, std::int64_t epoch) const override {
    const double progress = double(std::min(epoch, total_)) / double(total_);
    return base * (start_ + (end_ - start_) * progress);
  }
  double start_, end_;
  std::int64_t total_;
};

}  // namespace gumbel::optim
