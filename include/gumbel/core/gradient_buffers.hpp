// Gradients of a list of parameters kept apart from the parameters' own: what one block of
// examples contributes, so that blocks computed on different threads or processes can be
// summed in a fixed order.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/parameter.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel {

/// One zero-initialised gradient per parameter of a list (a "slot" is a parameter's position in
/// it). A tape given these buffers (Tape::set_gradient_buffers) accumulates parameter gradients
/// here instead of into Parameter::grad. Not safe to share between threads: give each its own.
template <class T>
class GradientBuffers {
 public:
  explicit GradientBuffers(ParameterList<T> params) : params_(std::move(params)) {
    grads_.reserve(params_.size());
    for (const Parameter<T>* p : params_) {
      if (p == nullptr) detail::fail<ValueError>("GradientBuffers", "a parameter is null");
      grads_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
    }
  }

  std::size_t size() const { return params_.size(); }
  const ParameterList<T>& parameters() const { return params_; }
  Matrix<T>& grad(std::size_t slot) { return grads_[slot]; }
  const Matrix<T>& grad(std::size_t slot) const { return grads_[slot]; }

  /// The slot of `p`, or a ValueError naming it when it is not in the list. Models record their
  /// parameters in the same order every step, so the slot after the last one found is tried
  /// first: a lookup costs O(1) in a steady step.
  std::size_t slot_of(const Parameter<T>& p) {
    const std::size_t n = params_.size();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t slot = (next_ + k) % n;
      if (params_[slot] == &p) {
        next_ = slot + 1;
        return slot;
      }
    }
    detail::fail<ValueError>("GradientBuffers", "parameter '", p.name,
                             "' is not one of the parameters these buffers were made for");
  }

  /// Sets every gradient to zero.
  void zero() {
    for (Matrix<T>& g : grads_) g.setZero();
  }

 private:
  ParameterList<T> params_;
  std::vector<Matrix<T>> grads_;
  std::size_t next_ = 0;
};

}  // namespace gumbel
