// Adam (Kingma & Ba 2015) with PyTorch's conventions: bias-corrected moments, eps added to the
// corrected root second moment, weight decay as an L2 term added to the gradient; and AdamW
// (Loshchilov & Hutter 2019), whose weight decay shrinks the parameters directly.
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
#include "gumbel/optim/optimizer.hpp"

namespace gumbel::optim {

template <class T>
struct AdamOptions {
  T lr = T(1e-3);
  T beta1 = T(0.9);
  T beta2 = T(0.999);
  T eps = T(1e-8);
  T weight_decay = T(0);
  /// AdamW: p -= lr wd p before the update, instead of wd p added to the gradient.
  bool decoupled_weight_decay = false;
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  explicit Adam(ParameterList<T> params, AdamOptions<T> options = {})
      : Adam(std::vector<ParamGroup<T>>{{std::move(params), std::nullopt}}, options) {}

  /// Groups of parameters, each with its own learning rate or options.lr.
  Adam(std::vector<ParamGroup<T>> groups, AdamOptions<T> options, const char* name = "Adam")
      : Optimizer<T>((validate(name, options), name), std::move(groups), options.lr),
        options_(options) {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Parameter<T>* p = params_[i];
      m_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
      v_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
      index_.emplace(p, i);
    }
    updated_.assign(params_.size(), 0);
  }

  /// One update from the current gradients:
  /// g = grad + wd p (AdamW: g = grad and p -= lr wd p first); m = b1 m + (1-b1) g;
  /// v = b2 v + (1-b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  void step() override { update(false); }

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

  void begin_slices() override { slices_ = begin_step(); }
  void update_slice(std::size_t i, Index begin, Index end) override {
    update_range(i, slices_, begin, end, false);
  }

  /// The options given; options().lr is the rate of groups without their own (lr(g) is current).
  const AdamOptions<T>& options() const { return options_; }

  /// Optimizer state, for checkpoints: steps() and both moments of each parameter.
  std::vector<Matrix<T>>& first_moments() { return m_; }
  std::vector<Matrix<T>>& second_moments() { return v_; }
  const std::vector<Matrix<T>>& first_moments() const { return m_; }
  const std::vector<Matrix<T>>& second_moments() const { return v_; }
  /// Both moments, as torch.optim.Adam's "exp_avg" and "exp_avg_sq".
  std::vector<StateBuffers<T>> state() override { return {{"exp_avg", &m_}, {"exp_avg_sq", &v_}}; }

 private:
  using Optimizer<T>::params_;
  using Optimizer<T>::steps_;

  /// The step's constants: t advances by one; one step size per group.
  struct Coefficients {
    std::vector<T>* step_size;  // lr_g / (1 - b1^t)
    T inv_sqrt_bc2;             // 1 / sqrt(1 - b2^t)
  };

  Coefficients begin_step() {
    ++steps_;
    const double t = static_cast<double>(steps_);
    step_size_.resize(this->groups());
    for (std::size_t g = 0; g < this->groups(); ++g) {
      step_size_[g] = static_cast<T>(this->lr(g) / (1.0 - std::pow(double(options_.beta1), t)));
    }
    // sqrt(v / bc2) = sqrt(v) * (1 / sqrt(bc2)): a multiply where a divide per element would
    // cost as much as the square root.
    return {&step_size_,
            static_cast<T>(1.0 / std::sqrt(1.0 - std::pow(double(options_.beta2), t)))};
  }

  void update(bool zero_grad_after) {
    const Coefficients c = begin_step();
    for (std::size_t i = 0; i < params_.size(); ++i) update_parameter(i, c, zero_grad_after);
  }

  void update_parameter(std::size_t i, const Coefficients& c, bool zero_grad_after) {
    update_range(i, c, 0, params_[i]->size(), zero_grad_after);
  }

  void update_range(std::size_t i, const Coefficients& c, Index begin, Index end,
                    bool zero_grad_after) {
    const T b1 = options_.beta1;
    const T b2 = options_.beta2;
    const T wd = options_.weight_decay;
    const T eps = options_.eps;
    const std::size_t group = this->group_of(i);
    const T step_size = (*c.step_size)[group];
    const bool decoupled = options_.decoupled_weight_decay && wd != T(0);
    const T shrink = T(1) - this->lr(group) * wd;  // AdamW
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    // Cache-sized chunks: the three vectorised expressions below then read each chunk from
    // memory once, as a single fused loop would (a plain loop does not vectorise std::sqrt).
    constexpr Index kChunk = 2048;
    for (Index j = begin; j < end; j += kChunk) {
      const Index len = std::min(kChunk, end - j);
      Eigen::Map<Array> p(params_[i]->value.data() + j, len);
      Eigen::Map<Array> grad(params_[i]->grad.data() + j, len);
      Eigen::Map<Array> m(m_[i].data() + j, len);
      Eigen::Map<Array> v(v_[i].data() + j, len);
      if (decoupled) {
        p *= shrink;
        moments(grad, m, v, b1, b2, eps);
      } else if (wd != T(0)) {
        moments(grad + wd * p, m, v, b1, b2, eps);
      } else {
        moments(grad, m, v, b1, b2, eps);  // without decay, g is the gradient: p is not read twice
      }
      p -= step_size * m / (v.sqrt() * c.inv_sqrt_bc2 + eps);
      if (zero_grad_after) grad.setZero();
    }
  }

  /// m = b1 m + (1 - b1) g ; v = b2 v + (1 - b2) g^2, with subnormal moments flushed to 0 where
  /// that leaves the update as it is. A parameter whose gradient stays 0 (a weight of a pixel
  /// that is always 0) has moments that decay geometrically into the subnormal range, where
  /// every operation on them can cost a hundred cycles on x86 (it doubled a VAE epoch).
  /// m below the smallest normal moves p by under lr * 1e-38 / (sqrt(v) + eps) and goes to 0.
  /// v below it goes to 0 only once m is 0 and eps > 0: the update is then 0 either way. While
  /// m is not 0, a subnormal v stays (a gradient of 1e-20 in float with eps = 0 moves p by
  /// about lr, as in PyTorch, not to -inf).
  template <class G, class M>
  static void moments(const G& g, M& m, M& v, T b1, T b2, T eps) {
    constexpr T tiny = std::numeric_limits<T>::min();
    m = b1 * m + (T(1) - b1) * g;
    m = (m.abs() < tiny).select(T(0), m);
    v = b2 * v + (T(1) - b2) * g.square();
    if (eps > T(0)) v = (v < tiny && m == T(0)).select(T(0), v);
  }

  static int validate(const char* name, const AdamOptions<T>& o) {
    detail::require_range(name, "lr", o.lr, T(0), false, T(INFINITY), true);
    detail::require_range(name, "beta1", o.beta1, T(0), false, T(1), true);
    detail::require_range(name, "beta2", o.beta2, T(0), false, T(1), true);
    detail::require_range(name, "eps", o.eps, T(0), false, T(INFINITY), true);
    detail::require_range(name, "weight_decay", o.weight_decay, T(0), false, T(INFINITY), true);
    return 0;
  }

  AdamOptions<T> options_;
  std::vector<T> step_size_;                // per group, this step
  Coefficients slices_{&step_size_, T(1)};  // the step begun by begin_slices()
  std::vector<Matrix<T>> m_;
  std::vector<Matrix<T>> v_;
  std::unordered_map<const Parameter<T>*, std::size_t> index_;  // parameter -> its moments
  std::vector<char> updated_;  // per parameter, during backward_and_step
};

/// AdamW (Loshchilov & Hutter 2019) with PyTorch's defaults (weight_decay = 0.01): Adam whose
/// weight decay multiplies each parameter by 1 - lr wd before the update.
template <class T>
struct AdamWOptions : AdamOptions<T> {
  AdamWOptions() {
    this->weight_decay = T(1e-2);
    this->decoupled_weight_decay = true;
  }
};

template <class T>
class AdamW : public Adam<T> {
 public:
  explicit AdamW(ParameterList<T> params, AdamWOptions<T> options = {})
      : AdamW(std::vector<ParamGroup<T>>{{std::move(params), std::nullopt}}, options) {}
  AdamW(std::vector<ParamGroup<T>> groups, AdamWOptions<T> options)
      : Adam<T>(std::move(groups), options, "AdamW") {}
};

}  // namespace gumbel::optim
