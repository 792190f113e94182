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

/// One gradient per parameter of a list (a "slot" is a parameter's position in it): zero
/// matrices of its own, or views of the parameters' own `grad` (`Storage::parameters`). A tape
/// given these buffers (Tape::set_gradient_buffers) accumulates parameter gradients here instead
/// of into Parameter::grad. Not safe to share between threads: give each its own.
template <class T>
class GradientBuffers {
 public:
  enum class Storage { own, parameters };

  explicit GradientBuffers(ParameterList<T> params, Storage storage = Storage::own)
      : params_(std::move(params)) {
    views_.reserve(params_.size());
    owned_.reserve(params_.size());
    for (Parameter<T>* p : params_) {
      if (p == nullptr) detail::fail<ValueError>("GradientBuffers", "a parameter is null");
      if (storage == Storage::own) {
        owned_.push_back(Matrix<T>::Zero(p->rows(), p->cols()));
        views_.emplace_back(owned_.back().data(), p->rows(), p->cols());
      } else {
        views_.emplace_back(p->grad.data(), p->rows(), p->cols());
      }
    }
  }
  // Views point into owned_ or the parameters: copies would share them.
  GradientBuffers(const GradientBuffers&) = delete;
  GradientBuffers& operator=(const GradientBuffers&) = delete;

  std::size_t size() const { return params_.size(); }
  const ParameterList<T>& parameters() const { return params_; }
  MatrixMap<T> grad(std::size_t slot) const { return views_[slot]; }

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
    for (MatrixMap<T>& g : views_) g.setZero();
  }

 private:
  ParameterList<T> params_;
  std::vector<Matrix<T>> owned_;  // reserved below: its matrices never move
  std::vector<MatrixMap<T>> views_;
  std::size_t next_ = 0;
};

}  // namespace gumbel
