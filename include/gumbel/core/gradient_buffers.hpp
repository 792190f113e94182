// Gradients of a list of parameters kept apart from the parameters' own: what one block of
// examples contributes, so that blocks computed on different threads or processes can be
// summed in a fixed order.
#pragma once

#include <algorithm>
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
    stale_.assign(params_.size(), 0);
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
    std::fill(stale_.begin(), stale_.end(), char{0});
  }

  /// Sets every gradient to zero without writing it: each is marked stale, and the next
  /// backward of a tape using these buffers assigns its first contribution to it instead of
  /// adding it (a pass of zeroing saved) and zeroes, before calling `ready` on its parameter,
  /// one it does not write. A stale gradient's memory holds old values: read a gradient only
  /// after that backward, or after zero_stale().
  void zero_lazily() { std::fill(stale_.begin(), stale_.end(), char{1}); }

  /// Zeroes the gradients still stale (those of parameters the last backward did not reach).
  void zero_stale() {
    for (std::size_t s = 0; s < views_.size(); ++s) {
      if (stale_[s]) views_[s].setZero();
    }
    std::fill(stale_.begin(), stale_.end(), char{0});
  }

  /// For Tape: whether a slot's memory is stale, and that a backward has written it.
  bool stale(std::size_t slot) const { return stale_[slot] != 0; }
  void mark_written(std::size_t slot) { stale_[slot] = 0; }

 private:
  ParameterList<T> params_;
  std::vector<Matrix<T>> owned_;  // reserved below: its matrices never move
  std::vector<MatrixMap<T>> views_;
  std::vector<char> stale_;  // per slot: zero_lazily() marked it and no backward has written it
  std::size_t next_ = 0;
};

}  // namespace gumbel
