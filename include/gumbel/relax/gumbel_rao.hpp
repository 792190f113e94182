// The Gumbel-Rao estimator (Paulus, Maddison & Krause 2021): a straight-through gradient
// averaged over Gumbel noise drawn conditionally on the sampled class, with the same forward
// value as straight-through Gumbel and a lower variance.
#pragma once

#include <cmath>

#include "gumbel/relax/gumbel_softmax.hpp"

namespace gumbel {
namespace detail {

/// Conditional Gumbel draws for a block of rows, given each row's sampled class `top[r]`. The
/// perturbed logits are z = l + G with l = logits - max (the shift keeps the noise at full
/// precision next to huge logits) and G Gumbel noise conditioned on argmax z = top: the maximum
/// is a Gumbel around logsumexp(l), every other class a Gumbel around its l truncated below
/// that maximum: z_top = lse - ln E_top, z_j = -logaddexp(-z_top, ln E_j - l_j), E ~ Exp(1).
/// `prepare` computes what every draw of the block shares (l and lse), `draw` one draw into
/// `dest` (rows x k), softmaxed at 1/tau. The elementwise work runs over the whole block at once,
/// so short rows (K = 10) still fill vector registers.
template <class T>
struct ConditionalBlock {
  Index rows, k;
  const Index* top;
  T* shifted;  ///< l, rows x k
  T* spread;   ///< -z_top of the current draw, repeated over each row's k entries
  T lse[kMaxBlockRows];

  void prepare(const T* logits) {
    for (Index r = 0; r < rows; ++r) {
      const ConstRowArray<T> raw(logits + r * k, k);
      RowArray<T> l(shifted + r * k, k);
      l = raw - raw.maxCoeff();
      lse[r] = std::log(exp_flush(l).sum());
    }
  }

  void draw(const Generator& gen, std::uint64_t first, Index first_row, T inv_tau, T* dest) {
    using Flat = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
    const Index n = rows * k;
    gen.uniform_range(first, first_row * k, n, dest);
    T z_top[kMaxBlockRows];
    for (Index r = 0; r < rows; ++r) {
      z_top[r] = lse[r] - std::log(-std::log(dest[r * k + top[r]]));
      RowArray<T>(spread + r * k, k).setConstant(-z_top[r]);
    }
    Flat z(dest, n);
    const Flat a(spread, n);
    // ln E_j - l_j with E_j = -ln u_j; +inf for a masked class, which then gets z_j = -inf.
    z = (-z.log()).log() - Flat(shifted, n);
    z = -(z.max(a) + (-(z - a).abs()).exp().log1p());
    for (Index r = 0; r < rows; ++r) dest[r * k + top[r]] = z_top[r];
    softmax_block(dest, rows, k, z_top, inv_tau);
  }
};

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
  T* shifted = draws > 1 ? node.tape->scratch(n) : nullptr;
  T* spread = draws > 1 ? node.tape->scratch(n) : nullptr;
  T* out = node.out.value_mut().data();
  const T* l = logits.value().data();
  detail::perturb_blocks(
      op, node, logits, gen, soft, k * draws, [&](Index first_row, Index block_rows, T* block) {
        Index top[detail::kMaxBlockRows];
        const Index bad = detail::block_argmax(block, block_rows, k, top);
        if (bad >= 0) return bad;
        for (Index r = 0; r < block_rows; ++r) {
          const T max0 = block[r * k + top[r]];
          detail::softmax_block(block + r * k, 1, k, &max0, inv_tau);
        }
        detail::write_one_hot(out + first_row * k, block_rows, k, top);
        if (draws == 1) return Index{-1};
        const Index at = first_row * k;
        detail::ConditionalBlock<T> conditional{block_rows, k, top, shifted + at, spread + at, {}};
        conditional.prepare(l + at);
        for (Index m = 1; m < draws; ++m) {
          conditional.draw(gen, extra + stride * std::uint64_t(m - 1), first_row, inv_tau,
                           soft + m * n + at);
        }
        return Index{-1};
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
