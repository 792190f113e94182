// Adam (Kingma & Ba 2015) with PyTorch's conventions: bias-corrected moments, eps added to the
// corrected root second moment, weight decay as an L2 term added to the gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gumbel/core/tape.hpp"
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
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Parameter<T>* p = params_[i];
      m_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
      v_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
      index_.emplace(p, i);
    }
    updated_.assign(params_.size(), 0);
  }

  /// One update from the current gradients:
  /// g = grad + wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  /// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  void step() { update(false); }

  /// step() then zero_grad(), in one pass over memory: each gradient chunk is cleared while it
  /// is still in cache, instead of by a second sweep over all parameters.
  void step_and_zero_grad() { update(true); }

  /// tape.backward(loss) then step_and_zero_grad(), bit for bit, but each parameter is updated
  /// as soon as backward has finished its gradient, while that gradient and the weights its
  /// backward just read are still in cache. Parameters the loss does not reach are updated
  /// after the walk, as step() would (their moments still move them).
  void backward_and_step(Tape<T>& tape, const Var<T>& loss) {
    const Coefficients c = begin_step();
    std::fill(updated_.begin(), updated_.end(), char{0});
    tape.backward(loss, [&](Parameter<T>& p) {
      const auto it = index_.find(&p);
      if (it == index_.end() || updated_[it->second]) return;  // not ours, or shared twice
      update_parameter(it->second, c, true);
      updated_[it->second] = 1;
    });
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!updated_[i]) update_parameter(i, c, true);
    }
  }

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
  const std::vector<Matrix<T>>& first_moments() const { return m_; }
  const std::vector<Matrix<T>>& second_moments() const { return v_; }
  const ParameterList<T>& parameters() const { return params_; }

 private:
  /// The step's constants: t advances by one.
  struct Coefficients {
    T step_size;     // lr / (1 - b1^t)
    T inv_sqrt_bc2;  // 1 / sqrt(1 - b2^t)
  };

  Coefficients begin_step() {
    ++steps_;
    const double t = static_cast<double>(steps_);
    // sqrt(v / bc2) = sqrt(v) * (1 / sqrt(bc2)): a multiply where a divide per element would
    // cost as much as the square root.
    return {static_cast<T>(options_.lr / (1.0 - std::pow(double(options_.beta1), t))),
            static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(double(options_.beta2), t)))};
  }

  void update(bool zero_grad_after) {
    const Coefficients c = begin_step();
    for (std::size_t i = 0; i < params_.size(); ++i) update_parameter(i, c, zero_grad_after);
  }

  void update_parameter(std::size_t i, const Coefficients& c, bool zero_grad_after) {
    const T b1 = options_.beta1;
    const T b2 = options_.beta2;
    const T wd = options_.weight_decay;
    const T eps = options_.eps;
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
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
      p -= c.step_size * m / (v.sqrt() * c.inv_sqrt_bc2 + eps);
      if (zero_grad_after) grad.setZero();
    }
  }

  /// m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2, each flushed to 0 below the smallest
  /// normal number. A parameter whose gradient stays 0 (a weight of a pixel that is always 0)
  /// has moments that decay geometrically into the subnormal range within a few hundred steps,
  /// where every operation on them can cost a hundred cycles on x86 (it doubled a VAE epoch);
  /// a moment that small changes no parameter of magnitude above about lr * 1e-30 / eps.
  template <class G, class M>
  static void moments(const G& g, M& m, M& v, T b1, T b2) {
    constexpr T tiny = std::numeric_limits<T>::min();
    m = b1 * m + (T(1) - b1) * g;
    m = (m.abs() < tiny).select(T(0), m);
    v = b2 * v + (T(1) - b2) * g.square();
    v = (v < tiny).select(T(0), v);
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
  std::unordered_map<const Parameter<T>*, std::size_t> index_;  // parameter -> its moments
  std::vector<char> updated_;  // per parameter, during backward_and_step
  std::int64_t steps_ = 0;
};

}  // namespace gumbel::optim
