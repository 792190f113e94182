// nn::L0Gate: Hard Concrete gates on the features of a layer's input or output, trained with the
// expected-L0 penalty (Louizos, Welling & Kingma 2018).
#pragma once

#include <cmath>

#include "gumbel/core/parameter.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/ops/elementwise.hpp"
#include "gumbel/ops/reduce.hpp"
#include "gumbel/random/generator.hpp"
#include "gumbel/relax/hard_concrete.hpp"

namespace gumbel::nn {

/// y = x * z with one gate z per feature (column), shared by the batch: a Hard Concrete sample
/// in training, the deterministic gate otherwise. Before a Linear it selects inputs
/// (`fc(gate(x, gen, true))`), after one it prunes units (`gate(fc(x), gen, true)`).
/// `log_alpha` (1 x features) starts at N(ln(keep / (1 - keep)), 0.01^2), keep = 0.5 by default
/// (the paper's initial drop rate 0.5), drawn from `gen`.
template <class T>
class L0Gate : public Module<T> {
 public:
  L0Gate(Index features, Generator& gen, double keep = 0.5, HardConcreteOptions options = {})
      : options_(options) {
    if (features <= 0) {
      detail::fail<ValueError>("nn::L0Gate", "features must be positive, got ", features);
    }
    if (!(keep > 0) || !(keep < 1)) {
      detail::fail<ValueError>("nn::L0Gate", "keep = ", keep, " must lie in (0, 1)");
    }
    detail::require_hard_concrete<T>("nn::L0Gate", options);
    log_alpha = Parameter<T>(gen.normal<T>(1, features, T(std::log(keep / (1 - keep))), T(0.01)),
                             "log_alpha");
    this->register_parameter("log_alpha", log_alpha);
  }

  /// As below, in the module's mode (is_training()).
  Var<T> operator()(const Var<T>& x, Generator& gen) {
    return (*this)(x, gen, this->is_training());
  }

  /// Records the gated x (B x features) on x's tape; `training` draws the gates from `gen`.
  Var<T> operator()(const Var<T>& x, Generator& gen, bool training) {
    Tape<T>& tape = detail::tape_of("nn::L0Gate", x);
    if (x.cols() != features()) {
      detail::fail<ShapeError>("nn::L0Gate", "input ", shape_str(x.rows(), x.cols()), " has ",
                               x.cols(), " features, the gate ", features());
    }
    const Var<T> la = tape.parameter(log_alpha);
    return mul(x, training ? hard_concrete(la, gen, options_) : hard_concrete_gate(la, options_));
  }

  /// The expected number of open gates, sum_j P(z_j != 0): add lambda times it to the loss.
  Var<T> penalty(Tape<T>& tape) {
    return sum(hard_concrete_l0(tape.parameter(log_alpha), options_));
  }

  /// The test-time gates (1 x features), without a tape.
  Matrix<T> gates() const {
    const T width = T(options_.zeta - options_.gamma);
    return detail::clamp_unit(detail::sigmoid_exact(log_alpha.value.array()) * width +
                              T(options_.gamma))
        .matrix();
  }

  Index features() const { return log_alpha.cols(); }
  const HardConcreteOptions& options() const { return options_; }

  Parameter<T> log_alpha;

 private:
  HardConcreteOptions options_;
};

}  // namespace gumbel::nn
