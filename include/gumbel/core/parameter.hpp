// A trainable matrix that outlives any tape: its value and accumulated gradient.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gumbel/core/types.hpp"

namespace gumbel {

/// A parameter's value and gradient are owned here; a tape only points at them, so
/// gradients from every backward() accumulate until zero_grad(). A parameter must stay at the
/// same address while a tape that recorded it is in use (keep models in place, not in vectors
/// that reallocate).
template <class T>
struct Parameter {
  Matrix<T> value;
  Matrix<T> grad;
  std::string name;

  Parameter() = default;
  explicit Parameter(Matrix<T> initial, std::string label = {})
      : value(std::move(initial)),
        grad(Matrix<T>::Zero(value.rows(), value.cols())),
        name(std::move(label)) {}

  Index rows() const { return value.rows(); }
  Index cols() const { return value.cols(); }
  Index size() const { return value.size(); }
  void zero_grad() { grad.setZero(); }

  // Bookkeeping of Tape::backward with a ready callback: which backward last saw this parameter
  // and the earliest node it has there (its gradient is complete once the walk passes it).
  std::uint64_t backward_stamp_ = 0;
  std::uint32_t first_node_ = 0;
};

/// The parameters of a model, in a stable order (optimizers and checkpoints rely on it).
template <class T>
using ParameterList = std::vector<Parameter<T>*>;

/// Clears every gradient in the list.
template <class T>
void zero_grad(const ParameterList<T>& params) {
  for (Parameter<T>* p : params) p->zero_grad();
}

}  // namespace gumbel
