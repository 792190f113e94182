// The reverse-mode tape (the variable handle is in core/var.hpp).
//
// A tape records one node per op. A node's value is a whole matrix held in the tape's arena;
// its backward is a small closure, also in the arena, that adds the node's gradient into its
// inputs' gradients. backward(loss) walks the nodes from the loss down to the first one.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "gumbel/core/arena.hpp"
#include "gumbel/core/error.hpp"
#include "gumbel/core/gradient_buffers.hpp"
#include "gumbel/core/parameter.hpp"
#include "gumbel/core/sizes.hpp"
#include "gumbel/core/types.hpp"
#include "gumbel/core/var.hpp"

namespace gumbel {

namespace detail {
/// A number no backward has used before, on any tape (parameters may be shared by tapes).
inline std::uint64_t next_backward_stamp() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}
}  // namespace detail

/// Records one node per op and runs reverse mode over them; owns every node's value and
/// gradient (in its arena) until clear().
template <class T>
class Tape {
 public:
  static_assert(std::is_floating_point_v<T>, "gumbel::Tape<T> needs float or double");
  using Scalar = T;

  explicit Tape(std::size_t initial_bytes = std::size_t{1} << 20) : arena_(initial_bytes) {
    nodes_.reserve(64);
  }
  // Variables point at their tape, so a tape stays where it was made.
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  /// A leaf that receives no gradient (input data, targets). The matrix is copied.
  template <class Derived>
  Var<T> constant(const Eigen::MatrixBase<Derived>& m) {
    Var<T> v = make(m.rows(), m.cols(), false);
    v.value_mut() = m.template cast<T>();
    return v;
  }

  /// A 1x1 constant.
  Var<T> scalar(T x) {
    Var<T> v = make(1, 1, false);
    *node_of(v).value = x;
    return v;
  }

  /// A leaf whose gradient backward() accumulates (read it with `v.grad()`).
  template <class Derived>
  Var<T> variable(const Eigen::MatrixBase<Derived>& m) {
    Var<T> v = make_node(m.rows(), m.cols(), true, false);
    v.value_mut() = m.template cast<T>();
    v.grad_mut().setZero();
    return v;
  }

  /// A leaf that reads `p.value` in place and accumulates into `p.grad` (or into p's gradient
  /// in the buffers given to set_gradient_buffers).
  Var<T> parameter(Parameter<T>& p) {
    if (p.grad.rows() != p.value.rows() || p.grad.cols() != p.value.cols()) {
      detail::fail<ShapeError>("Tape::parameter", "parameter '", p.name, "' has value ",
                               shape_str(p.value.rows(), p.value.cols()), " but gradient ",
                               shape_str(p.grad.rows(), p.grad.cols()));
    }
    Node n;
    n.value = p.value.data();
    n.rows = p.value.rows();
    n.cols = p.value.cols();
    if (grad_enabled_) {
      n.parameter = &p;
      if (buffers_ != nullptr) {
        n.slot = static_cast<std::uint32_t>(buffers_->slot_of(p));
        n.grad = buffers_->grad(n.slot).data();
        n.buffers = buffers_;
      } else {
        n.grad = p.grad.data();
      }
    }
    return push(n, true);
  }

  /// Parameters recorded from now on accumulate their gradients into `buffers` instead of
  /// Parameter::grad; nullptr restores the default. With buffers, a backward keeps its
  /// bookkeeping on the tape and writes nothing into the parameters, so tapes on different
  /// threads may record the same parameters at once (each with its own buffers). The buffers
  /// must outlive the nodes recorded with them.
  void set_gradient_buffers(GradientBuffers<T>* buffers) { buffers_ = buffers; }
  GradientBuffers<T>* gradient_buffers() const { return buffers_; }

  /// Runs reverse mode from a 1x1 loss: intermediate gradients start from zero, leaf and
  /// parameter gradients accumulate. Nodes the loss does not depend on are skipped.
  void backward(const Var<T>& loss) {
    backward(loss, [](Parameter<T>&) {});
  }

  /// backward(loss) that also calls `ready(p)` for each parameter on the tape as soon as no
  /// node left to walk can add to its gradient, so that an optimizer can update it while the
  /// gradient is still in cache (see Adam::backward_and_step). `ready` may change p.value and
  /// p.grad: nothing left to walk reads them.
  template <class Ready>
  void backward(const Var<T>& loss, Ready&& ready) {
    check("backward", loss);
    const Node& out = node_of(loss);
    if (out.rows != 1 || out.cols != 1) {
      detail::fail<TapeError>("backward", "the loss must be 1x1, got ",
                              shape_str(out.rows, out.cols));
    }
    if (out.grad == nullptr) {
      detail::fail<TapeError>("backward", "the loss does not depend on any variable or parameter");
    }
    // Rather than zeroing every intermediate gradient, mark it unwritten: its first writer
    // assigns (GradSink), and a node nothing was written into has no effect on the loss. A
    // parameter recorded more than once is ready only at its earliest node.
    // A node recorded with gradient buffers keeps its parameter's first node in first_of_slot_
    // (this tape's own), the others in the parameter (shared by tapes on one thread). A slot
    // the buffers hold stale (GradientBuffers::zero_lazily) reads as unwritten, as an
    // intermediate gradient does: the buffers' flag serves all of the parameter's nodes.
    const std::uint64_t stamp = detail::next_backward_stamp();
    first_of_slot_.clear();
    for (std::uint32_t i = 0; i <= loss.index_; ++i) {
      Node& n = nodes_[i];
      n.unwritten = n.intermediate;
      if (n.parameter == nullptr) continue;
      if (n.slot != kNoSlot) {
        if (n.slot >= first_of_slot_.size()) first_of_slot_.resize(n.slot + 1, kNoSlot);
        if (first_of_slot_[n.slot] == kNoSlot) first_of_slot_[n.slot] = i;
      } else if (n.parameter->backward_stamp_ != stamp) {
        n.parameter->backward_stamp_ = stamp;
        n.parameter->first_node_ = i;
      }
    }
    loss.grad_sink().add(Eigen::Array<T, 1, 1>::Constant(T(1)));
    for (std::uint32_t i = loss.index_ + 1; i-- > 0;) {
      const Node& n = nodes_[i];
      if (n.backward != nullptr && !nodes_[n.owner].unwritten) n.backward(n.closure);
      if (n.parameter == nullptr) continue;
      const std::uint32_t first =
          n.slot != kNoSlot ? first_of_slot_[n.slot] : n.parameter->first_node_;
      if (first != i) continue;
      if (n.slot != kNoSlot) {  // a stale slot nothing wrote is zero
        if (n.buffers->stale(n.slot)) MatrixMap<T>(n.grad, n.rows, n.cols).setZero();
        n.buffers->mark_written(n.slot);
      }
      ready(*n.parameter);
    }
  }

  /// Forgets every node; memory is kept for the next step. Variables made before are invalid.
  void clear() {
    nodes_.clear();
    arena_.reset();
    ++generation_;
  }

  /// With false, new nodes record no gradient and no backward (evaluation); default true.
  void set_grad_enabled(bool enabled) { grad_enabled_ = enabled; }
  bool grad_enabled() const { return grad_enabled_; }

  /// Number of nodes recorded since the last clear().
  std::size_t size() const { return nodes_.size(); }
  /// Arena bytes in use / held.
  std::size_t bytes_used() const { return arena_.used(); }
  std::size_t bytes_reserved() const { return arena_.capacity(); }

  // ---- For op implementations -------------------------------------------------------------

  /// A new node with an uninitialised value; it has a gradient when `requires_grad` (and
  /// gradients are enabled). A negative shape, or one too large to address, is a ShapeError
  /// naming `op`; memory the system cannot give is a std::bad_alloc.
  Var<T> make(Index rows, Index cols, bool requires_grad, const char* op = "Tape::make") {
    return make_node(rows, cols, requires_grad && grad_enabled_, true, op);
  }

  /// Attaches the backward closure of `out`. Nothing is recorded when `out` needs no gradient.
  /// The closure lives in the arena and is never destroyed, so it may capture only trivially
  /// destructible things (variables, maps, numbers, pointers).
  template <class F>
  void on_backward(const Var<T>& out, F&& fn) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_trivially_destructible_v<Fn>,
                  "a backward closure must be trivially destructible (capture Vars and numbers)");
    static_assert(alignof(Fn) <= Arena::alignment, "over-aligned backward closure");
    Node& n = nodes_[out.index_];
    if (n.grad == nullptr) return;
    void* memory = arena_.allocate(sizeof(Fn));
    n.closure = new (memory) Fn(std::forward<F>(fn));
    n.backward = [](void* closure) { (*static_cast<Fn*>(closure))(); };
  }

  /// A node that shares `source`'s memory under another shape (a free reshape): gradients
  /// written to it land directly in the source's gradient.
  Var<T> alias(const Var<T>& source, Index rows, Index cols) {
    Node n = node_of(source);
    n.rows = rows;
    n.cols = cols;
    n.backward = nullptr;
    n.closure = nullptr;
    n.parameter = nullptr;
    n.slot = kNoSlot;
    return push(n, false);  // keeps the source as the owner of the gradient's state
  }

  /// Arena memory for `count` values, valid until clear() (intermediates a backward needs).
  T* scratch(Index count) { return scratch_of<T>(count); }

  /// The same for `count` objects of another trivially destructible type (indices, flags).
  template <class U>
  U* scratch_of(Index count) {
    static_assert(std::is_trivially_destructible_v<U>, "scratch memory is never destroyed");
    if (count < 0) throw std::bad_array_new_length();
    return arena_.allocate_array<U>(static_cast<std::size_t>(count));
  }

  /// Throws unless `v` is a live variable of this tape.
  void check(const char* op, const Var<T>& v) const {
    if (v.tape_ == nullptr) detail::fail<TapeError>(op, "an operand is an empty variable");
    if (v.tape_ != this) {
      detail::fail<TapeError>(op, "an operand belongs to another tape (tapes cannot be mixed)");
    }
    if (v.generation_ != generation_) {
      detail::fail<TapeError>(op, "an operand was made before its tape was cleared");
    }
  }

 private:
  friend class Var<T>;

  struct Node {
    T* value = nullptr;
    T* grad = nullptr;  // null when no gradient is needed
    Index rows = 0;
    Index cols = 0;
    void (*backward)(void*) = nullptr;
    void* closure = nullptr;
    Parameter<T>* parameter = nullptr;      // set on the leaf of a parameter
    GradientBuffers<T>* buffers = nullptr;  // where its gradient is, if not in the parameter
    std::uint32_t slot = kNoSlot;           // the parameter's slot in `buffers`
    // The node whose gradient memory this is: itself, or the source of an alias.
    std::uint32_t owner = 0;
    bool intermediate = false;  // its gradient restarts from zero at each backward
    bool unwritten = false;     // intermediate gradient not written since backward began (= zero)
  };

  Var<T> make_node(Index rows, Index cols, bool requires_grad, bool intermediate,
                   const char* op = "Tape::variable") {
    const auto size = static_cast<std::size_t>(detail::checked_size<T>(op, rows, cols));
    Node n;
    n.rows = rows;
    n.cols = cols;
    n.value = arena_.allocate_array<T>(size);
    if (requires_grad) {
      n.grad = arena_.allocate_array<T>(size);
      n.intermediate = intermediate;
      n.unwritten = intermediate;  // reads as zero until a backward writes it
    }
    return push(n, true);
  }

  Var<T> push(Node n, bool owns_gradient) {
    if (nodes_.size() >= std::numeric_limits<std::uint32_t>::max()) {
      detail::fail<TapeError>("Tape", "more than 2^32 nodes on one tape");
    }
    const auto index = static_cast<std::uint32_t>(nodes_.size());
    if (owns_gradient) n.owner = index;
    nodes_.push_back(n);
    return Var<T>(this, index, generation_);
  }

  const Node& node_of(const Var<T>& v) const { return nodes_[v.index_]; }

  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();

  Arena arena_;
  std::vector<Node> nodes_;
  GradientBuffers<T>* buffers_ = nullptr;
  std::vector<std::uint32_t> first_of_slot_;  // per slot, during backward
  std::uint32_t generation_ = 1;              // a default Var has generation 0 and no tape
  bool grad_enabled_ = true;
};

/// Turns off gradient recording on a tape for its scope and restores the previous setting when
/// it ends (as torch::NoGradGuard, but per tape: other tapes are unaffected).
template <class T>
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape<T>& tape) : tape_(tape), previous_(tape.grad_enabled()) {
    tape.set_grad_enabled(false);
  }
  ~NoGradGuard() { tape_.set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape<T>& tape_;
  bool previous_;
};

namespace detail {

/// The common tape of an op's operands, or a TapeError naming the op.
template <class T, class... Rest>
Tape<T>& tape_of(const char* op, const Var<T>& first, const Rest&... rest) {
  if (!first.valid()) {
    detail::fail<TapeError>(op, first.empty() ? "an operand is an empty variable"
                                              : "an operand was made before its tape was cleared");
  }
  Tape<T>& tape = first.tape();
  (tape.check(op, rest), ...);
  return tape;
}

/// True when any operand needs a gradient.
template <class T, class... Rest>
bool any_requires_grad(const Var<T>& first, const Rest&... rest) {
  return first.requires_grad() || (rest.requires_grad() || ...);
}

/// Exact shape equality, or a ShapeError naming the op and both shapes.
template <class T>
void require_same_shape(const char* op, const Var<T>& a, const Var<T>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    fail<ShapeError>(op, "shapes differ: ", shape_str(a.rows(), a.cols()), " and ",
                     shape_str(b.rows(), b.cols()));
  }
}

}  // namespace detail

/// For writing ops: the tape the operands share, or a TapeError naming the op (an empty or
/// cleared variable, or operands of different tapes).
using detail::tape_of;
}  // namespace gumbel
