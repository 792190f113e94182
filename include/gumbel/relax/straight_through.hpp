// Straight-through estimators without Gumbel noise in the gradient: plain straight-through
// (Bengio, Leonard & Courville 2013) and ReinMax (Liu et al. 2023, "Bridging discrete and
// backpropagation: straight-through and beyond"). Both show an exact one-hot sample D of
// softmax(logits) in the forward pass; they differ only in the gradient they send back.
#pragma once

#include <cmath>

#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {
namespace detail {

/// dest = softmax((row - max row) * inv_tau), one row of k entries (finite maximum).
template <class T>
void softmax_row(const T* row, Index k, T inv_tau, T* dest) {
  const ConstRowArray<T> l(row, k);
  RowArray<T> p(dest, k);
  p = exp_flush((l - l.maxCoeff()) * inv_tau);
  p /= p.sum();
}

enum class StraightThrough { plain, reinmax };

/// The forward pass both estimators share: D = one-hot of argmax(logits + g), an exact sample of
/// softmax(logits) (the same values and generator position as gumbel_softmax(..., hard = true)).
/// With a gradient to compute, `keep(i, row, argmax)` stores what the backward needs.
template <class T>
Var<T> straight_through_node(const char* op, StraightThrough kind, const Var<T>& logits, T tau,
                             Generator& gen) {
  const SamplingNode<T> node = begin_sampling(op, logits, tau, Var<T>(), gen);
  const Index k = node.k;
  T* out = node.out.value_mut().data();
  if (!node.out.requires_grad()) {
    write_gumbel_max(op, node, logits, gen, out);
    return node.out;
  }
  // plain: p = softmax(l / tau).  reinmax: pi0 = softmax(l), pi1 = (D + softmax(l / tau)) / 2.
  const bool reinmax = kind == StraightThrough::reinmax;
  T* p = node.tape->scratch(node.rows * k);
  T* pi0 = reinmax ? node.tape->scratch(node.rows * k) : nullptr;
  const T* l = logits.value().data();
  perturb_blocks(op, node, logits, gen, out, k, [&](Index first_row, Index rows, T* block) {
    Index argmax[kMaxBlockRows] = {};  // (GCC 12 cannot see that block_argmax fills it)
    const Index bad = block_argmax(block, rows, k, argmax);
    if (bad >= 0) return bad;
    write_one_hot(block, rows, k, argmax);
    for (Index r = 0; r < rows; ++r) {
      const Index i = first_row + r;
      softmax_row(l + i * k, k, node.inv_tau, p + i * k);
      if (reinmax) {
        softmax_row(l + i * k, k, T(1), pi0 + i * k);
        RowArray<T>(p + i * k, k) *= T(0.5);
        p[i * k + argmax[r]] += T(0.5);
      }
    }
    return Index{-1};
  });

  // plain:   dl += p (dy - <dy, p>) / tau
  // reinmax: dl += 2 pi1 (dy - <dy, pi1>) - pi0 (dy - <dy, pi0>) / 2
  node.tape->on_backward(node.out, [logits, node, p, pi0] {
    GradSink<T> dl = logits.grad_sink();
    const auto dy = node.out.grad();
    const Index kk = node.k;
    parallel_rows(node.rows, 4 * kk, [&](Index i) {
      const auto dyi = dy.row(i).array();
      const ConstRowArray<T> p1(p + i * kk, kk);
      if (pi0 == nullptr) {
        dl.add_row(i, p1 * (dyi - (dyi * p1).sum()) * node.inv_tau);
        return;
      }
      const ConstRowArray<T> p0(pi0 + i * kk, kk);
      dl.add_row(i, T(2) * p1 * (dyi - (dyi * p1).sum()) - T(0.5) * p0 * (dyi - (dyi * p0).sum()));
    });
  });
  return node.out;
}

}  // namespace detail

/// Plain straight-through (Bengio et al. 2013): the value is the one-hot of a sample of
/// softmax(logits) (drawn by Gumbel-max, the same sample as gumbel_softmax(..., hard = true) from
/// the same generator); the gradient is that of softmax(logits / tau), no noise in it.
template <class T>
Var<T> straight_through(const Var<T>& logits, Generator& gen, detail::NotDeduced<T> tau = T(1)) {
  return detail::straight_through_node("straight_through", detail::StraightThrough::plain, logits,
                                       T(tau), gen);
}

/// ReinMax (Liu et al. 2023): the same one-hot sample D of softmax(logits), with the gradient of
/// Heun's method: 2 J(pi1) - J(pi0) / 2, where J(p) is the Jacobian of a softmax at p,
/// pi0 = softmax(logits) and pi1 = (D + softmax(logits / tau)) / 2. The authors recommend
/// tau >= 1 (their code refuses tau < 1; here any tau > 0 is accepted).
template <class T>
Var<T> reinmax(const Var<T>& logits, Generator& gen, detail::NotDeduced<T> tau = T(1)) {
  return detail::straight_through_node("reinmax", detail::StraightThrough::reinmax, logits, T(tau),
                                       gen);
}

}  // namespace gumbel
