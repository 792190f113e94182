// Relaxed subset sampling (Xie & Ermon 2019, "Reparameterizable subset sampling via continuous
// relaxations"): a differentiable k-hot vector from k successive softmaxes over Gumbel-perturbed
// logits, each step softly removing what the previous one chose.
#pragma once

#include <cmath>
#include <limits>

#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {
namespace detail {

/// The steps of one row. x_1 = (r - max r) / tau with r = logits + g; step j takes
/// p_j = softmax(x_j) and x_{j+1} = x_j + h(x_j) / tau, h = ln(1 - softmax(x)), shifted by its
/// maximum; y = sum_j p_j. h is log1p(-p) where p <= 1/2, and at the row's largest entry t it is
/// lse_{m != t}(x) - lse(x), so a step whose p_t rounds to 1 still leaves every x finite.
template <class T>
struct SubsetSteps {
  static constexpr T kInf = std::numeric_limits<T>::infinity();
  Index k;      ///< classes
  Index steps;  ///< the subset size
  Index rows;
  T inv_tau;
  T* x;           ///< steps slabs of rows x k: x_j of every row
  T* lse;         ///< steps x rows: lse(x_j)
  T* lse_others;  ///< steps x rows: lse(x_j) without its first maximum

  T* x_at(Index j, Index i) const { return x + (j * rows + i) * k; }

  /// Row i's steps (r in x_at(0, i) on entry); y into out unless out is null.
  void forward(Index i, T* out) const {
    for (Index j = 0; j < steps; ++j) {
      RowArray<T> xj(x_at(j, i), k);
      Index top = 0;
      const T m = xj.maxCoeff(&top);
      xj -= m;
      if (j == 0) xj *= inv_tau;
      const T l = std::log(exp_flush(xj).sum());  // >= 0: the maximum contributes e^0
      lse[j * rows + i] = l;
      if (out != nullptr) {
        RowArray<T> y(out, k);
        if (j == 0) {
          y = exp_flush(xj - l);
        } else {
          y += exp_flush(xj - l);
        }
      }
      if (j + 1 == steps) break;
      xj(top) = -kInf;  // the others' log-sum-exp around their own maximum
      const T m2 = xj.maxCoeff();
      const T others = m2 == -kInf ? m2 : m2 + std::log(exp_flush(xj - m2).sum());
      xj(top) = T(0);
      lse_others[j * rows + i] = others;
      RowArray<T> next(x_at(j + 1, i), k);
      next = xj + (-exp_flush(xj - l)).log1p() * inv_tau;
      next(top) = (others - l) * inv_tau;
    }
  }

  /// d<dy, y>/dr of row i into g (k entries), walking the steps back with a = dL/dx_{j+1}:
  ///   dL/dx_j = a + J_h(x_j)^T a / tau + p_j (dy - <dy, p_j>),
  ///   (J_h^T a)_m = p_m (sum w - sum a - w_m) + [m != t] a_t e^(x_m - lse_others),
  /// w_m = a_m / (1 - p_m) off the maximum t (p_m <= 1/2 there), w_t = 0; finally dr = dx_1 / tau.
  void backward(Index i, const T* dy_row, T* g) const {
    const ConstRowArray<T> dy(dy_row, k);
    RowArray<T> a(g, k);
    for (Index j = steps - 1; j >= 0; --j) {
      const ConstRowArray<T> xj(x_at(j, i), k);
      const T l = lse[j * rows + i];
      const auto p = exp_flush(xj - l);
      const T soft = (dy * p).sum();
      if (j + 1 == steps) {
        a = p * (dy - soft);
        continue;
      }
      Index top = 0;
      xj.maxCoeff(&top);
      const T at = a(top);
      const T pt = std::exp(-l);
      const T others = lse_others[j * rows + i];
      T sum_w = T(0);
      for (Index m = 0; m < k; ++m) {
        if (m != top) sum_w += a(m) / (T(1) - std::exp(xj(m) - l));
      }
      const T base = sum_w - a.sum();
      if (others == -kInf) {
        a += p * (base - a / (T(1) - p)) * inv_tau + p * (dy - soft);
      } else {
        a +=
            (p * (base - a / (T(1) - p)) + at * exp_flush(xj - others)) * inv_tau + p * (dy - soft);
      }
      a(top) = at + pt * base * inv_tau + pt * (dy(top) - soft);
    }
    a *= inv_tau;
  }
};

/// The exact k-hot of the `steps` largest of row r (first index on ties), into out.
template <class T>
void write_top_k(const T* r, Index k, Index steps, T* out) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  RowArray<T> o(out, k);
  o = ConstRowArray<T>(r, k);  // finite or -inf; +inf marks a chosen class
  for (Index j = 0; j < steps; ++j) {
    Index best = -1;
    for (Index c = 0; c < k; ++c) {
      if (o(c) != kInf && (best < 0 || o(c) > o(best))) best = c;
    }
    o(best) = kInf;
  }
  o = (o == kInf).template cast<T>();
}

}  // namespace detail

/// A relaxed k-hot sample per row: y = the sum of k successive softmaxes at temperature tau over
/// the perturbed logits logits + g (Xie & Ermon 2019), every entry in [0, k] (above 1 at high
/// temperatures, where successive softmaxes pile onto one class) and every row summing to k;
/// as tau -> 0, y tends to the k-hot of the Gumbel-top-k sample. With hard = true
/// the value is that exact k-hot (the classes gumbel_top_k draws from the same generator) and
/// the gradient is the soft sample's (straight-through). A row needs k unmasked classes.
template <class T>
Var<T> relaxed_subset(const Var<T>& logits, Index k, detail::NotDeduced<T> tau, Generator& gen,
                      bool hard = false) {
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const char* op = hard ? "relaxed_subset(hard)" : "relaxed_subset";
  detail::tape_of(op, logits);
  const Index classes = logits.cols();
  if (k < 1 || k > classes) {
    detail::fail<ValueError>(op, "k = ", k, " must lie in [1, ", classes, "] for logits of ",
                             shape_str(logits.rows(), classes));
  }
  const auto lv = logits.value();
  for (Index i = 0; i < lv.rows(); ++i) {
    const Index finite = (lv.row(i).array() > -kInf).count();
    if (finite < k) {
      detail::fail<ValueError>(op, "row ", i, " has ", finite,
                               " unmasked classes, fewer than k = ", k);
    }
  }
  const Index rows = logits.rows();
  detail::checked_size<T>(op, rows * classes, k + 1);
  const detail::SamplingNode<T> node = detail::begin_sampling(op, logits, T(tau), Var<T>(), gen);
  Tape<T>& tape = *node.tape;
  T* out = node.out.value_mut().data();
  const bool soft_needed = !hard || node.out.requires_grad();
  const detail::SubsetSteps<T> steps{classes,
                                     k,
                                     rows,
                                     node.inv_tau,
                                     tape.scratch((soft_needed ? k : 1) * rows * classes),
                                     tape.scratch(k * rows),
                                     tape.scratch(k * rows)};
  detail::perturb_blocks(
      op, node, logits, gen, steps.x, 4 * k * classes,
      [&](Index first_row, Index block_rows, T* block) {
        for (Index r = 0; r < block_rows; ++r) {
          const Index i = first_row + r;
          const T* row = block + r * classes;
          const T m =
              detail::ConstRowArray<T>(row, classes).template maxCoeff<Eigen::PropagateNaN>();
          if (!(m < kInf)) return r;
          if (hard) detail::write_top_k(row, classes, k, out + i * classes);
          if (soft_needed) steps.forward(i, hard ? nullptr : out + i * classes);
        }
        return Index{-1};
      });
  if (!node.out.requires_grad()) return node.out;

  // y = sum_j softmax(x_j) (hard: its k-hot) ;  dl = d<dy, y>/dr through the steps (SubsetSteps)
  tape.on_backward(node.out, [logits, node, steps, work = tape.scratch(rows * classes)] {
    GradSink<T> dl = logits.grad_sink();
    const T* dy = node.out.grad().data();
    detail::parallel_rows(node.rows, 8 * steps.steps * steps.k, [&](Index i) {
      T* g = work + i * steps.k;
      steps.backward(i, dy + i * steps.k, g);
      dl.add_row(i, detail::ConstRowArray<T>(g, steps.k));
    });
  });
  return node.out;
}

}  // namespace gumbel
