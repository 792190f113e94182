// The handle users pass around (Var) and where a backward writes an operand's gradient
// (GradSink). A Var reads its tape's nodes, so it is usable only with core/tape.hpp, which
// includes this header: include that one.
#pragma once

#include <cstdint>

#include "gumbel/core/error.hpp"
#include "gumbel/core/sizes.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel {

template <class T>
class Tape;

/// Where a backward puts one operand's gradient contribution. Intermediate gradients are not
/// zeroed before backward: the first op to write one assigns its contribution, later ones add.
template <class T>
class GradSink {
 public:
  GradSink(MatrixMap<T> grad, bool unwritten) : grad_(grad), unwritten_(unwritten) {}

  /// grad += contribution (assigned when it is the first), for a full-shape array expression.
  template <class Contribution>
  void add(const Contribution& contribution) {
    write(grad_.array(), contribution);
  }

  /// The same for row i, for backwards that go row by row; every row must be written.
  template <class Contribution>
  void add_row(Index i, const Contribution& contribution) {
    write(grad_.row(i).array(), contribution);
  }

  /// The same for rows [first, first + count), for backwards that share rows among threads
  /// (each thread its own rows, through one sink made before they start).
  template <class Contribution>
  void add_rows(Index first, Index count, const Contribution& contribution) {
    write(grad_.middleRows(first, count).array(), contribution);
  }

  /// Whether writes assign (nothing was written before) or must add, and the memory itself, for
  /// kernels that write whole rows their own way; every row must be written.
  bool assigns() const { return unwritten_; }
  T* data() { return grad_.data(); }

  /// The gradient's memory as it is, for a writer that assigns every element when assigns()
  /// and adds otherwise (a product into its output).
  MatrixMap<T> memory() { return grad_; }

  /// The gradient, zeroed first if nothing had been written: for partial or accumulating
  /// writes (a broadcast sum, a matrix product adding into its output).
  MatrixMap<T> zeroed() {
    if (unwritten_) grad_.setZero();
    unwritten_ = false;
    return grad_;
  }

 private:
  // dest = contribution when nothing was written, dest += contribution after.
  template <class Dest, class Contribution>
  void write(Dest&& dest, const Contribution& contribution) const {
    if (unwritten_) {
      dest = contribution;
    } else {
      dest += contribution;
    }
  }

  MatrixMap<T> grad_;
  bool unwritten_;
};

/// A handle to one node of a tape: cheap to copy, valid until the tape is cleared.
template <class T>
class Var {
 public:
  using Scalar = T;

  Var() = default;

  Index rows() const { return node().rows; }
  Index cols() const { return node().cols; }
  Index size() const { return node().rows * node().cols; }
  bool requires_grad() const { return node().grad != nullptr; }

  /// The node's value, read-only.
  ConstMatrixMap<T> value() const {
    const auto& n = node();
    return ConstMatrixMap<T>(n.value, n.rows, n.cols);
  }

  /// The gradient of the last backward() with respect to this node (zero where backward did not
  /// reach it).
  ConstMatrixMap<T> grad() const {
    const MatrixMap<T> g = grad_mut();
    return ConstMatrixMap<T>(g.data(), g.rows(), g.cols());
  }

  /// The value of a 1x1 node.
  T item() const {
    const auto& n = node();
    if (n.rows != 1 || n.cols != 1) {
      detail::fail<ShapeError>("Var::item", "needs a 1x1 value, got ", shape_str(n.rows, n.cols));
    }
    return *n.value;
  }

  /// The tape this variable lives on.
  Tape<T>& tape() const {
    node();
    return *tape_;
  }

  /// True for a default-constructed variable.
  bool empty() const noexcept { return tape_ == nullptr; }

  /// True while the tape that made this variable has not been cleared since.
  bool valid() const noexcept { return tape_ != nullptr && tape_->generation_ == generation_; }

  /// Write access for op implementations: the output value in forward; in backward, the
  /// gradient to add into (other ops may have contributed already), zeroed first when nothing
  /// has been written into it yet.
  MatrixMap<T> value_mut() const {
    const auto& n = node();
    return MatrixMap<T>(n.value, n.rows, n.cols);
  }
  MatrixMap<T> grad_mut() const { return grad_sink().zeroed(); }

  /// The gradient as a backward writes it: a map and whether nothing has been written into it
  /// since backward() began. In that case a contribution covering the whole matrix may be
  /// assigned rather than added, which saves a pass of zeroing; see GradSink.
  GradSink<T> grad_sink() const {
    const auto& n = node();
    if (n.grad == nullptr) {
      detail::fail<TapeError>("Var::grad", "this variable does not require a gradient (a constant",
                              " or a value computed from constants only)");
    }
    auto& owner = tape_->nodes_[n.owner];  // an alias shares its source's gradient and state
    bool unwritten = owner.unwritten;
    owner.unwritten = false;
    // A parameter's nodes in gradient buffers share its buffers' flag (zero_lazily).
    if (owner.buffers != nullptr) {
      unwritten = owner.buffers->stale(owner.slot);
      owner.buffers->mark_written(owner.slot);
    }
    return GradSink<T>(MatrixMap<T>(n.grad, n.rows, n.cols), unwritten);
  }

 private:
  friend class Tape<T>;
  Var(Tape<T>* tape, std::uint32_t index, std::uint32_t generation)
      : tape_(tape), index_(index), generation_(generation) {}

  const typename Tape<T>::Node& node() const {
    if (tape_ == nullptr) {
      detail::fail<TapeError>("Var",
                              "used an empty variable (default-constructed, never assigned)");
    }
    if (tape_->generation_ != generation_) {
      detail::fail<TapeError>("Var", "used a variable whose tape was cleared since it was made");
    }
    return tape_->nodes_[index_];
  }

  Tape<T>* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint32_t generation_ = 0;
};

}  // namespace gumbel
