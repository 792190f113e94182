// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, following
// PyTorch's torch.optim.SGD update rule.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "gumbel/optim/common.hpp"
#include "gumbel/optim/optimizer.hpp"

namespace gumbel::optim {

template <class T>
struct SGDOptions {
  T lr = T(1e-2);
  T momentum = T(0);
  T dampening = T(0);
  T weight_decay = T(0);
  bool nesterov = false;
};

template <class T>
class SGD : public Optimizer<T> {
 public:
  explicit SGD(ParameterList<T> params, SGDOptions<T> options = {})
      : SGD(std::vector<ParamGroup<T>>{{std::move(params), std::nullopt}}, options) {}

  /// Groups of parameters, each with its own learning rate or options.lr.
  SGD(std::vector<ParamGroup<T>> groups, SGDOptions<T> options)
      : Optimizer<T>((validate(options), "SGD"), std::move(groups), options.lr), options_(options) {
    for (Parameter<T>* p : params_) buffers_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
  }

  /// g = grad + wd p; b = g on the first step, else mu b + (1 - dampening) g;
  /// g = g + mu b (Nesterov) or b; p -= lr g
  void step() override {
    begin_slices();
    for (std::size_t i = 0; i < params_.size(); ++i) update_slice(i, 0, params_[i]->size());
  }

  void begin_slices() override {
    first_step_ = steps_ == 0;
    ++steps_;
  }

  /// g = grad + wd p; b = g on the first step, else mu b + (1 - dampening) g;
  /// p -= lr (g + mu b) with Nesterov, p -= lr b with momentum, p -= lr g without.
  void update_slice(std::size_t i, Index begin, Index end) override {
    const T mu = options_.momentum;
    const Index len = end - begin;
    Parameter<T>& p = *params_[i];
    const T lr = this->lr(this->group_of(i));
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    Eigen::Map<Array> value(p.value.data() + begin, len);
    const auto g =
        Eigen::Map<const Array>(p.grad.data() + begin, len) + options_.weight_decay * value;
    if (mu == T(0)) {
      value -= lr * g;
      return;
    }
    Eigen::Map<Array> b(buffers_[i].data() + begin, len);
    if (first_step_) {
      b = g;
    } else {
      b = mu * b + (T(1) - options_.dampening) * g;
    }
    if (options_.nesterov) {
      value -= lr * (g + mu * b);
    } else {
      value -= lr * b;
    }
  }

  const SGDOptions<T>& options() const { return options_; }
  std::vector<Matrix<T>>& momentum_buffers() { return buffers_; }
  /// The momentum buffers, as torch.optim.SGD's "momentum_buffer".
  std::vector<StateBuffers<T>> state() override { return {{"momentum_buffer", &buffers_}}; }

 private:
  using Optimizer<T>::params_;
  using Optimizer<T>::steps_;

  static int validate(const SGDOptions<T>& o) {
    detail::require_range("SGD", "lr", o.lr, T(0), false, T(INFINITY), true);
    detail::require_range("SGD", "momentum", o.momentum, T(0), false, T(INFINITY), true);
    detail::require_range("SGD", "dampening", o.dampening, T(0), false, T(1), false);
    detail::require_range("SGD", "weight_decay", o.weight_decay, T(0), false, T(INFINITY), true);
    if (o.nesterov && (o.momentum <= T(0) || o.dampening != T(0))) {
      gumbel::detail::fail<ValueError>("SGD",
                                       "nesterov needs momentum > 0 and dampening = 0 (got "
                                       "momentum = ",
                                       o.momentum, ", dampening = ", o.dampening, ")");
    }
    return 0;
  }

  SGDOptions<T> options_;
  std::vector<Matrix<T>> buffers_;
  bool first_step_ = false;  // the step begun is the first: buffers start as the gradient
};

}  // namespace gumbel::optim
