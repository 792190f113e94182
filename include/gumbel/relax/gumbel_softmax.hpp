// The Gumbel-Softmax (Concrete) relaxation of a categorical sample, its straight-through (hard)
// form, its log-space form, and exact categorical samples by the Gumbel-max trick.
//
// Each row of `logits` is one categorical over its K columns (unnormalised log-probabilities;
// -inf masks a class). Noise for element (i, j) comes from the generator's counter, so a
// sample is the same whatever the thread count.
#pragma once

#include <optional>

#include "gumbel/ops/elementwise.hpp"
#include "gumbel/relax/perturb.hpp"
#include "gumbel/relax/sampling.hpp"

namespace gumbel {

namespace detail {

/// perturb_logits, with errors reported as the op the user called.
template <class Derived>
Matrix<typename Derived::Scalar> perturb_logits_for(const char* op,
                                                    const Eigen::MatrixBase<Derived>& logits,
                                                    Generator& gen) {
  using T = typename Derived::Scalar;
  const Matrix<T> l = logits;
  Matrix<T> p(l.rows(), l.cols());
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(l.size()));
  RowFailure failure;
  parallel_rows(l.rows(), l.cols(), [&](Index i) {
    if (perturb_row(gen, first, i, l.data() + i * l.cols(), p.data() + i * l.cols(), l.cols()) <
        0) {
      failure.report(i);
    }
  });
  failure.throw_if_failed(op);
  return p;
}

}  // namespace detail

/// Perturbed logits p = logits + g, g ~ Gumbel(0, 1) i.i.d.; argmax of each row of p is an exact
/// sample of softmax(logits). Where a logit exceeds 16 in magnitude, p = (logits - m) + g with m
/// the row's maximum: the shift keeps the noise at full precision next to huge logits.
template <class Derived>
Matrix<typename Derived::Scalar> perturb_logits(const Eigen::MatrixBase<Derived>& logits,
                                                Generator& gen) {
  return detail::perturb_logits_for("perturb_logits", logits, gen);
}

/// Gumbel-max: one exact categorical sample per row, as class indices (no gradient).
template <class Derived>
Eigen::Matrix<Index, Eigen::Dynamic, 1> gumbel_max(const Eigen::MatrixBase<Derived>& logits,
                                                   Generator& gen) {
  if (logits.cols() == 0) detail::fail<ShapeError>("gumbel_max", "logits have 0 classes");
  const auto p = detail::perturb_logits_for("gumbel_max", logits, gen);
  Eigen::Matrix<Index, Eigen::Dynamic, 1> index(p.rows());
  for (Index i = 0; i < p.rows(); ++i) p.row(i).maxCoeff(&index(i));
  return index;
}

/// Rows of one-hot vectors of length k from class indices.
template <class T>
Matrix<T> one_hot(const Eigen::Matrix<Index, Eigen::Dynamic, 1>& index, Index k) {
  detail::checked_size<T>("one_hot", index.size(), k);
  Matrix<T> out = Matrix<T>::Zero(index.size(), k);
  for (Index i = 0; i < index.size(); ++i) {
    if (index(i) < 0 || index(i) >= k) {
      detail::fail<ValueError>("one_hot", "index ", index(i), " in row ", i, " is outside [0, ", k,
                               ")");
    }
    out(i, index(i)) = T(1);
  }
  return out;
}

/// A node of Gumbel(0, 1) noise, rows x cols (a constant: noise has no gradient).
template <class T>
Var<T> gumbel_noise(Tape<T>& tape, Index rows, Index cols, Generator& gen) {
  Var<T> g = tape.make(rows, cols, false, "gumbel_noise");
  // The loop reads the shape the tape checked and made, not the arguments: with the arguments,
  // GCC propagates an overflowing request into the loop it never reaches and warns.
  auto value = g.value_mut();
  const Index n = value.rows(), m = value.cols();
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(n * m));
  T* data = value.data();
  detail::parallel_rows(n, m, [&](Index i) { gumbel_range(gen, first, i * m, m, data + i * m); });
  return g;
}

namespace detail {

/// The value of a 1x1 temperature variable, or a ShapeError.
template <class T>
T temperature_of(const char* op, const Var<T>& logits, const Var<T>& tau) {
  tape_of(op, logits, tau);
  if (tau.rows() != 1 || tau.cols() != 1) {
    fail<ShapeError>(op, "tau must be 1x1, got ", shape_str(tau.rows(), tau.cols()));
  }
  return tau.item();
}

/// What every sampling node does first: check its operands, make its output node and reserve
/// the noise of one draw over all rows x k elements.
template <class T>
struct SamplingNode {
  Tape<T>* tape;
  Var<T> out;
  Index rows;
  Index k;
  T inv_tau;
  bool tau_grad;        ///< the temperature is a variable that needs its gradient
  std::uint64_t first;  ///< first Philox block of the draw
};

template <class T>
SamplingNode<T> begin_sampling(const char* op, const Var<T>& logits, T tau, const Var<T>& tau_var,
                               Generator& gen) {
  Tape<T>& tape = tau_var.empty() ? tape_of(op, logits) : tape_of(op, logits, tau_var);
  if (logits.cols() == 0) {
    fail<ShapeError>(op, "logits have 0 classes: ", shape_str(logits.rows(), 0));
  }
  require_temperature(op, tau);
  const bool tau_grad = !tau_var.empty() && tau_var.requires_grad();
  const Index rows = logits.rows();
  const Index k = logits.cols();
  Var<T> out = tape.make(rows, k, logits.requires_grad() || tau_grad);
  return {
      &tape, out, rows, k, T(1) / tau, tau_grad, gen.advance(Generator::blocks_for<T>(rows * k))};
}

/// Writes the perturbed logits l + g of every row to dest (row i at dest + i k), a block of
/// rows at a time, and calls finish(first_row, rows, block) on each block, which returns the
/// block's first unusable row or -1. Blocks run in parallel; throws the op's error when a row is
/// unusable.
template <class T, class FinishBlock>
void perturb_blocks(const char* op, const SamplingNode<T>& node, const Var<T>& logits,
                    const Generator& gen, T* dest, Index work_per_row, FinishBlock&& finish) {
  const T* l = logits.value().data();
  const Index k = node.k;
  const Index block_rows = sampling_block_rows(k);
  const Index blocks = (node.rows + block_rows - 1) / block_rows;
  RowFailure failure;
  // A sampled element costs about as much as copying eight: parallelise sooner than a copy.
  parallel_rows(blocks, 8 * block_rows * work_per_row, [&](Index b) {
    const Index first_row = b * block_rows;
    const Index rows = std::min(block_rows, node.rows - first_row);
    T* block = dest + first_row * k;
    // Noise and the add over the whole block: short rows still fill vector registers.
    perturb_block(gen, node.first, first_row, rows, k, l + first_row * k, block);
    const Index bad = finish(first_row, rows, block);
    if (bad >= 0) failure.report(first_row + bad);
  });
  failure.throw_if_failed(op);
}

/// perturb_blocks with finish(i, row, argmax) called on each row, argmax being the index of
/// the row's first largest entry.
template <class T, class Finish>
void perturb_rows(const char* op, const SamplingNode<T>& node, const Var<T>& logits,
                  const Generator& gen, T* dest, Index work_per_row, Finish&& finish) {
  perturb_blocks(op, node, logits, gen, dest, work_per_row,
                 [&](Index first_row, Index rows, T* block) {
                   Index argmax[kMaxBlockRows];
                   const Index bad = block_argmax(block, rows, node.k, argmax);
                   if (bad >= 0) return bad;
                   for (Index r = 0; r < rows; ++r) {
                     finish(first_row + r, block + r * node.k, argmax[r]);
                   }
                   return Index{-1};
                 });
}

/// Writes the one-hot of argmax(logits + g) of every row (an exact sample of softmax(logits),
/// Gumbel-max) to out, over the perturbed logits.
template <class T>
void write_gumbel_max(const char* op, const SamplingNode<T>& node, const Var<T>& logits,
                      const Generator& gen, T* out) {
  perturb_blocks(op, node, logits, gen, out, node.k, [&](Index, Index rows, T* block) {
    Index argmax[kMaxBlockRows];
    const Index bad = block_argmax(block, rows, node.k, argmax);
    if (bad < 0) write_one_hot(block, rows, node.k, argmax);
    return bad;
  });
}

/// gumbel_softmax with the temperature given as a number (`tau_var` empty) or a 1x1 variable.
template <class T>
Var<T> gumbel_softmax_node(const Var<T>& logits, T tau, const Var<T>& tau_var, Generator& gen,
                           bool hard) {
  const char* op = hard ? "gumbel_softmax(hard)" : "gumbel_softmax";
  const SamplingNode<T> node = begin_sampling(op, logits, tau, tau_var, gen);
  const Index k = node.k;
  // The straight-through node shows the one-hot but differentiates the soft sample, which it
  // keeps in scratch memory; the soft node's value is the soft sample itself.
  T* out = node.out.value_mut().data();
  if (hard && !node.out.requires_grad()) {
    // No backward will read the soft sample: the value is the one-hot of the perturbed logits'
    // argmax (Gumbel-max), written over them.
    write_gumbel_max(op, node, logits, gen, out);
    return node.out;
  }
  T* soft = hard ? node.tape->scratch(node.rows * k) : out;
  perturb_blocks(op, node, logits, gen, soft, k, [&](Index first_row, Index rows, T* block) {
    return softmax_rows(block, rows, k, node.inv_tau, hard ? out + first_row * k : nullptr);
  });

  // y = softmax((l + g) / tau) (soft; hard shows its one-hot) ;
  // dz = y * (dy - <dy, y>), dl += dz / tau, dtau -= sum_j dz_j ln y_j / tau
  node.tape->on_backward(node.out, [logits, tau_var, node, soft] {
    const ConstMatrixMap<T> s(soft, node.rows, node.k);
    const auto dy = node.out.grad();
    const T inv_tau = node.inv_tau;
    T dtau = T(0);
    std::optional<GradSink<T>> dl;
    if (logits.requires_grad()) dl = logits.grad_sink();
    if (dl && !node.tau_grad) {  // rows shared among threads: each writes its own rows of dl
      parallel_row_blocks(node.rows, node.k, [&](Index r0, Index n) {
        if constexpr (std::is_same_v<T, float>) {
          if (node.k <= kShortRow) {
            const Index at = r0 * node.k;
            return kernels::softmax_short_rows_backward(soft + at, dy.data() + at, dl->data() + at,
                                                        n, node.k, inv_tau, dl->assigns());
          }
        }
        for (Index i = r0; i < r0 + n; ++i) {
          const auto dz = s.row(i).array() * (dy.row(i).array() - dy.row(i).dot(s.row(i)));
          dl->add_row(i, dz * inv_tau);
        }
      });
      return;
    }
    for (Index i = 0; i < node.rows; ++i) {
      const auto si = s.row(i).array();
      const auto dz = si * (dy.row(i).array() - dy.row(i).dot(s.row(i)));
      if (dl) dl->add_row(i, dz * inv_tau);
      if (node.tau_grad) dtau += (si > T(0)).select(dz * log_exact(si), T(0)).sum();
    }
    if (node.tau_grad) tau_var.grad_mut()(0, 0) -= dtau * inv_tau;
  });
  return node.out;
}

}  // namespace detail

/// A Gumbel-Softmax sample per row: y = softmax((logits + g) / tau), g ~ Gumbel(0, 1).
/// With hard = true the value is the exact one-hot of argmax(logits + g) and the gradient is
/// the soft sample's (the straight-through Gumbel estimator).
template <class T>
Var<T> gumbel_softmax(const Var<T>& logits, detail::NotDeduced<T> tau, Generator& gen,
                      bool hard = false) {
  return detail::gumbel_softmax_node(logits, T(tau), Var<T>(), gen, hard);
}

/// As above, with a learnable temperature: `tau` is a 1x1 variable and receives a gradient.
template <class T>
Var<T> gumbel_softmax(const Var<T>& logits, const Var<T>& tau, Generator& gen, bool hard = false) {
  const char* op = hard ? "gumbel_softmax(hard)" : "gumbel_softmax";
  return detail::gumbel_softmax_node(logits, detail::temperature_of(op, logits, tau), tau, gen,
                                     hard);
}

namespace detail {

template <class T>
Var<T> gumbel_softmax_log_node(const Var<T>& logits, T tau, const Var<T>& tau_var, Generator& gen) {
  constexpr const char* op = "gumbel_softmax_log";
  const SamplingNode<T> node = begin_sampling(op, logits, tau, tau_var, gen);
  perturb_rows(
      op, node, logits, gen, node.out.value_mut().data(), node.k,
      [&](Index, T* row, Index arg) { log_softmax_row(row, node.k, row[arg], node.inv_tau); });

  // y = log_softmax((l + g) / tau) ;
  // dz = dy - exp(y) sum_j dy_j, dl += dz / tau, dtau -= sum_j dz_j y_j / tau (masked j skipped)
  node.tape->on_backward(node.out, [logits, tau_var, node] {
    const auto yv = node.out.value();
    const auto dy = node.out.grad();
    const T inv_tau = node.inv_tau;
    T dtau = T(0);
    std::optional<GradSink<T>> dl;
    if (logits.requires_grad()) dl = logits.grad_sink();
    for (Index i = 0; i < node.rows; ++i) {
      const auto yi = yv.row(i).array();
      const auto dz = dy.row(i).array() - exp_flush(yi) * dy.row(i).sum();
      if (dl) dl->add_row(i, dz * inv_tau);
      if (node.tau_grad) {
        dtau += (yi > -std::numeric_limits<T>::infinity()).select(dz * yi, T(0)).sum();
      }
    }
    if (node.tau_grad) tau_var.grad_mut()(0, 0) -= dtau * inv_tau;
  });
  return node.out;
}

}  // namespace detail

/// The log of a Gumbel-Softmax sample, computed in log space: y = log_softmax((logits + g) /
/// tau), so exp(y) is the soft sample. Accurate where the soft sample underflows (low
/// temperatures), as the log-density of ExpConcrete needs.
template <class T>
Var<T> gumbel_softmax_log(const Var<T>& logits, detail::NotDeduced<T> tau, Generator& gen) {
  return detail::gumbel_softmax_log_node(logits, T(tau), Var<T>(), gen);
}

/// As above, with a learnable 1x1 temperature variable.
template <class T>
Var<T> gumbel_softmax_log(const Var<T>& logits, const Var<T>& tau, Generator& gen) {
  return detail::gumbel_softmax_log_node(
      logits, detail::temperature_of("gumbel_softmax_log", logits, tau), tau, gen);
}

}  // namespace gumbel
