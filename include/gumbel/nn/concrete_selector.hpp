// nn::ConcreteSelector: the selector layer of the Concrete autoencoder (Abid, Balin & Zou 2019):
// k neurons, each a Concrete distribution over the input features, that learn which k features
// to keep.
#pragma once

#include <cmath>

#include "gumbel/core/parameter.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/ops/linalg.hpp"
#include "gumbel/random/generator.hpp"
#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel::nn {

/// y = x M^T (B x inputs -> B x k): in training M = gumbel_softmax(logits, tau) (k x inputs, one
/// relaxed one-hot per selector, drawn once per call and shared by the batch); otherwise M is
/// the one-hot of each row's argmax, so that y holds exactly the selected features. `logits`
/// start from Glorot's normal initialisation, N(0, 2 / (k + inputs)), as the authors' code.
/// Anneal tau from about 10 to 0.01 (ExponentialDecay) so that the selections harden.
template <class T>
class ConcreteSelector : public Module<T> {
 public:
  ConcreteSelector(Index inputs, Index k, Generator& gen) {
    if (inputs <= 0 || k <= 0) {
      detail::fail<ValueError>("nn::ConcreteSelector", "inputs = ", inputs, " and k = ", k,
                               " must be positive");
    }
    detail::checked_size<T>("nn::ConcreteSelector", k, inputs);
    logits = Parameter<T>(gen.normal<T>(k, inputs, T(0), T(std::sqrt(2.0 / double(k + inputs)))),
                          "logits");
    this->register_parameter("logits", logits);
  }

  /// As below, in the module's mode (is_training()).
  Var<T> operator()(const Var<T>& x, detail::NotDeduced<T> tau, Generator& gen) {
    return (*this)(x, tau, gen, this->is_training());
  }

  /// Records the selection of x's features on x's tape.
  Var<T> operator()(const Var<T>& x, detail::NotDeduced<T> tau, Generator& gen, bool training) {
    Tape<T>& tape = detail::tape_of("nn::ConcreteSelector", x);
    if (x.cols() != inputs()) {
      detail::fail<ShapeError>("nn::ConcreteSelector", "input ", shape_str(x.rows(), x.cols()),
                               " has ", x.cols(), " features, the selector ", inputs());
    }
    if (training) return linear(x, gumbel_softmax(tape.parameter(logits), T(tau), gen));
    return linear(x, tape.constant(one_hot<T>(selected(), inputs())));
  }

  /// The feature each selector picks: the argmax of its logits (first on ties).
  IndexVector selected() const {
    IndexVector index(logits.rows());
    for (Index i = 0; i < logits.rows(); ++i) logits.value.row(i).maxCoeff(&index(i));
    return index;
  }

  /// The mean over selectors of the largest selection probability, max softmax(logits): near 1
  /// once the selections have hardened.
  T mean_max_probability() const {
    const Matrix<T> shifted = logits.value.colwise() - logits.value.rowwise().maxCoeff();
    return (T(1) / shifted.array().exp().rowwise().sum()).mean();
  }

  Index inputs() const { return logits.cols(); }
  Index k() const { return logits.rows(); }

  Parameter<T> logits;
};

}  // namespace gumbel::nn
