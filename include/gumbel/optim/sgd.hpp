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
    const T mu = options_.momentum;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Parameter<T>& p = *params_[i];
      const T lr = this->lr(this->group_of(i));
      const auto g = p.grad.array() + options_.weight_decay * p.value.array();
      if (mu == T(0)) {
        p.value.array() -= lr * g;
        continue;
      }
      auto b = buffers_[i].array();
      if (steps_ == 0) {
        b = g;
      } else {
        b = mu * b + (T(1) - options_.dampening) * g;
      }
      if (options_.nesterov) {
        p.value.array() -= lr * (g + mu * b);
      } else {
        p.value.array() -= lr * b;
      }
    }
    ++steps_;
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
};

}  // namespace gumbel::optim
