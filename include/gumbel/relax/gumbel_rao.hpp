// The Gumbel-Rao estimator (Paulus, Maddison & Krause 2021): a straight-through gradient
// averaged over Gumbel noise drawn conditionally on the sampled class, with the same forward
// value as straight-through Gumbel and a lower variance.
#pragma once

#include <cmath>

#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {
namespace detail {

/// In place: the perturbed logits z = logits - max + G of one row (shifted by the row's maximum
/// so that the noise keeps its precision next to huge logits), G drawn from Gumbel noise
/// conditioned on argmax z = top. The maximum is Gumbel around logsumexp(l), l = logits - max;
/// every other class is a Gumbel around its l truncated below that maximum:
/// z_top = lse - ln E_top, z_j = -logaddexp(-z_top, ln E_j - l_j), E ~ Exp(1).
template <class T>
void conditional_perturb_row(const Generator& gen, std::uint64_t first, Index i, const T* logits,
                             T* z, Index k, Index top) {
  gen.uniform_range(first, i * k, k, z);
  const ConstRowArray<T> raw(logits, k);
  const T m = raw.maxCoeff();
  const auto l = raw - m;
  const T lse = std::log(exp_flush(l).sum());
  RowArray<T> out(z, k);
  const T z_top = lse - std::log(-std::log(out(top)));
  // ln E_j - l_j with E_j = -ln u_j; +inf for a masked class, which then gets z_j = -inf.
  out = (-out.log()).log() - l;
  const auto a = -z_top;
  out = -(out.max(a) + (-(out - a).abs()).exp().log1p());
  out(top) = z_top;
}

}  // namespace detail

/// Forward: the one-hot of argmax(logits + g), exactly as gumbel_softmax(..., hard = true).
/// Backward: (1/M) sum_m J_m^T dy / tau-scaled, where J_m is the Jacobian of
/// softmax((logits + G_m) / tau) with G_m held fixed, G_0 = g and G_1..G_{M-1} fresh draws
/// conditioned on the same argmax. With samples = 1 it is the straight-through estimator.
/// dl += (1/M) sum_m s_m * (dy - <dy, s_m>) / tau,  s_m = softmax((l + G_m) / tau)
template <class T>
Var<T> gumbel_rao(const Var<T>& logits, detail::NotDeduced<T> tau, Generator& gen,
                  Index samples = 10) {
  constexpr const char* op = "gumbel_rao";
  if (samples < 1) detail::fail<ValueError>(op, "samples = ", samples, " must be at least 1");
  const detail::SamplingNode<T> node = detail::begin_sampling(op, logits, T(tau), Var<T>(), gen);
  const Index rows = node.rows;
  const Index k = node.k;
  const Index n = rows * k;
  if (!detail::fits(samples, n, sizeof(T))) {
    detail::fail<ValueError>(op, "samples = ", samples, " draws of ", shape_str(rows, k),
                             " logits need more elements than memory can address");
  }
  const T inv_tau = node.inv_tau;
  // The conditional draws are reserved even when no gradient is needed, so the generator
  // moves by the same amount either way.
  const std::uint64_t stride = Generator::blocks_for<T>(n);
  const std::uint64_t extra = gen.advance(stride * std::uint64_t(samples - 1));
  const Index draws = logits.requires_grad() ? samples : 1;
  T* soft = node.tape->scratch(draws * n);
  T* out = node.out.value_mut().data();
  const T* l = logits.value().data();
  detail::perturb_rows(op, node, logits, gen, soft, k * draws, [&](Index i, T* s0, Index top) {
    const T max0 = s0[top];
    detail::softmax_block(s0, 1, k, &max0, inv_tau);
    detail::RowArray<T>(out + i * k, k).setZero();
    out[i * k + top] = T(1);
    for (Index m = 1; m < draws; ++m) {
      T* s = soft + m * n + i * k;
      detail::conditional_perturb_row(gen, extra + stride * std::uint64_t(m - 1), i, l + i * k, s,
                                      k, top);
      const T max = s[top];  // the conditional draw keeps its maximum at top
      detail::softmax_block(s, 1, k, &max, inv_tau);
    }
  });

  node.tape->on_backward(node.out, [logits, y = node.out, soft, rows, k, samples, inv_tau] {
    const auto dy = y.grad();
    auto dl = logits.grad_mut();
    const T weight = inv_tau / T(samples);
    for (Index m = 0; m < samples; ++m) {
      // Sample m starts at an arbitrary offset: an unaligned map.
      const Eigen::Map<const Matrix<T>> s(soft + m * rows * k, rows, k);
      for (Index i = 0; i < rows; ++i) {
        dl.row(i).array() +=
            weight * s.row(i).array() * (dy.row(i).array() - dy.row(i).dot(s.row(i)));
      }
    }
  });
  return node.out;
}

}  // namespace gumbel
