// Adam (Kingma & Ba 2015) with PyTorch's conventions: bias-corrected moments, eps added to the
// corrected root second moment, weight decay as an L2 term added to the gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "gumbel/optim/common.hpp"

namespace gumbel::optim {

template <class T>
struct AdamOptions {
  T lr = T(1e-3);
  T beta1 = T(0.9);
  T beta2 = T(0.999);
  T eps = T(1e-8);
  T weight_decay = T(0);
};

template <class T>
class Adam {
 public:
  explicit Adam(ParameterList<T> params, AdamOptions<T> options = {})
      : params_(std::move(params)), options_(options) {
    validate(options_);
    detail::require_parameters("Adam", params_);
    for (Parameter<T>* p : params_) {
      m_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
      v_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
    }
  }

  /// One update from the current gradients:
  /// g = grad + wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  void step() { update(false); }

  /// step() then zero_grad(), in one pass over memory: each gradient chunk is cleared while it
  /// is still in cache, instead of by a second sweep over all parameters.
  void step_and_zero_grad() { update(true); }

  void zero_grad() { gumbel::zero_grad(params_); }

  const AdamOptions<T>& options() const { return options_; }
  /// Changes the learning rate (schedules); validated like the constructor's.
  void set_lr(T lr) {
    AdamOptions<T> next = options_;
    next.lr = lr;
    validate(next);
    options_ = next;
  }

  /// Optimizer state, for checkpoints: step count and both moments of each parameter.
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }
  std::vector<Matrix<T>>& first_moments() { return m_; }
  std::vector<Matrix<T>>& second_moments() { return v_; }
  const ParameterList<T>& parameters() const { return params_; }

 private:
  void update(bool zero_grad_after) {
    ++steps_;
    const double t = static_cast<double>(steps_);
    const T step_size = static_cast<T>(options_.lr / (1.0 - std::pow(double(options_.beta1), t)));
    // sqrt(v / bc2) = sqrt(v) * (1 / sqrt(bc2)): a multiply where a divide per element would
    // cost as much as the square root.
    const T inv_sqrt_bc2 =
        static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(double(options_.beta2), t)));
    const T b1 = options_.beta1;
    const T b2 = options_.beta2;
    const T wd = options_.weight_decay;
    const T eps = options_.eps;
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      // Cache-sized chunks: the three vectorised expressions below then read each chunk from
      // memory once, as a single fused loop would (a plain loop does not vectorise std::sqrt).
      constexpr Index kChunk = 2048;
      const Index n = params_[i]->size();
      for (Index j = 0; j < n; j += kChunk) {
        const Index len = std::min(kChunk, n - j);
        Eigen::Map<Array> p(params_[i]->value.data() + j, len);
        Eigen::Map<Array> grad(params_[i]->grad.data() + j, len);
        Eigen::Map<Array> m(m_[i].data() + j, len);
        Eigen::Map<Array> v(v_[i].data() + j, len);
        if (wd != T(0)) {
          moments(grad + wd * p, m, v, b1, b2);
        } else {
          moments(grad, m, v, b1, b2);  // without decay, g is the gradient: p is not read twice
        }
        p -= step_size * m / (v.sqrt() * inv_sqrt_bc2 + eps);
        if (zero_grad_after) grad.setZero();
      }
    }
  }

  /// m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2
  template <class G, class M>
  static void moments(const G& g, M& m, M& v, T b1, T b2) {
    m = b1 * m + (T(1) - b1) * g;
    v = b2 * v + (T(1) - b2) * g.square();
  }

  static void validate(const AdamOptions<T>& o) {
    detail::require_range("Adam", "lr", o.lr, T(0), false, T(INFINITY), true);
    detail::require_range("Adam", "beta1", o.beta1, T(0), false, T(1), true);
    detail::require_range("Adam", "beta2", o.beta2, T(0), false, T(1), true);
    detail::require_range("Adam", "eps", o.eps, T(0), false, T(INFINITY), true);
    detail::require_range("Adam", "weight_decay", o.weight_decay, T(0), false, T(INFINITY), true);
  }

  ParameterList<T> params_;
  AdamOptions<T> options_;
  std::vector<Matrix<T>> m_;
  std::vector<Matrix<T>> v_;
  std::int64_t steps_ = 0;
};

}  // namespace gumbel::optim
