// nn::Linear: an affine layer that owns its weight and bias (registered as "weight", "bias").
#pragma once

#include <cmath>

#include "gumbel/core/parameter.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/ops/linalg.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel::nn {

/// y = x W^T + b with W of shape out x in and b of shape 1 x out. Both start from PyTorch's
/// default U(-1/sqrt(in), 1/sqrt(in)), drawn from `gen` weight first, then bias.
template <class T>
class Linear : public Layer<T> {
 public:
  Linear(Index in_features, Index out_features, Generator& gen, bool with_bias = true) {
    if (in_features <= 0 || out_features <= 0) {
      detail::fail<ValueError>("nn::Linear",
                               "sizes must be positive, got in_features = ", in_features,
                               ", out_features = ", out_features);
    }
    const T bound = T(1) / std::sqrt(static_cast<T>(in_features));
    weight = Parameter<T>(gen.uniform<T>(out_features, in_features, -bound, bound), "weight");
    this->register_parameter("weight", weight);
    if (with_bias) {
      bias = Parameter<T>(gen.uniform<T>(1, out_features, -bound, bound), "bias");
      this->register_parameter("bias", bias);
    }
  }

  /// Records the layer on x's tape.
  Var<T> forward(const Var<T>& x) override {
    Tape<T>& tape = detail::tape_of("nn::Linear", x);
    if (!has_bias()) return linear(x, tape.parameter(weight));
    return linear(x, tape.parameter(weight), tape.parameter(bias));
  }

  Index in_features() const { return weight.cols(); }
  Index out_features() const { return weight.rows(); }
  bool has_bias() const { return bias.size() != 0; }

  Parameter<T> weight;
  Parameter<T> bias;
};

}  // namespace gumbel::nn
