// nn::Sequential and the activation layers it chains (ReLU, Sigmoid, Tanh, Softplus).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gumbel/nn/module.hpp"
#include "gumbel/ops/activation.hpp"

namespace gumbel::nn {

/// y = max(x, 0)
template <class T>
class ReLU : public Layer<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return relu(x); }
};

/// y = 1 / (1 + e^-x)
template <class T>
class Sigmoid : public Layer<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return sigmoid(x); }
};

/// y = tanh x
template <class T>
class Tanh : public Layer<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return tanh(x); }
};

/// y = ln(1 + e^x)
template <class T>
class Softplus : public Layer<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return softplus(x); }
};

/// Layers applied in order, each owned by the container and registered under its position
/// ("0", "1", ...; so the parameters are "0.weight", "0.bias", "2.weight", ... as PyTorch names
/// them): `seq.add<Linear<T>>(784, 256, gen); seq.add<ReLU<T>>();`.
template <class T>
class Sequential : public Layer<T> {
 public:
  /// Constructs a layer L from `args` at the end; returns it.
  template <class L, class... Args>
  L& add(Args&&... args) {
    static_assert(std::is_base_of_v<Layer<T>, L>, "Sequential holds nn::Layer<T>s");
    auto layer = std::make_unique<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    this->register_module(std::to_string(layers_.size()), ref);
    layers_.push_back(std::move(layer));
    return ref;
  }

  Var<T> forward(const Var<T>& x) override {
    if (layers_.empty()) detail::fail<ValueError>("nn::Sequential", "has no layers");
    Var<T> y = layers_.front()->forward(x);
    for (std::size_t i = 1; i < layers_.size(); ++i) y = layers_[i]->forward(y);
    return y;
  }

  std::size_t size() const { return layers_.size(); }
  Layer<T>& operator[](std::size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
};

}  // namespace gumbel::nn
