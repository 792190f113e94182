// Perturbing logits with Gumbel noise at full precision: p = logits + g for logits of ordinary
// size, p = (logits - row maximum) + g where a block holds a logit too large for the plain sum
// to keep the noise's precision. Argmax and softmax do not see the shift.
#pragma once

#include <cmath>
#include <limits>

#include "gumbel/random/gumbel_noise.hpp"
#include "gumbel/relax/sampling.hpp"

namespace gumbel::detail {

/// The row's maximum, or 0 when it has no finite one: the row's +inf, NaN or all -inf entries
/// then reach the perturbed values unchanged, and the caller rejects the row there.
template <class T>
T finite_max_or_zero(const T* row, Index k) {
  T max;
  return row_max(row, k, max) ? max : T(0);
}

using kernels::shift_rows_by_max;

/// Logits of at most this magnitude (masked -inf aside) take the noise without the shift by
/// their row's maximum: l + g then rounds no coarser than (l - max) + g, whose entries that can
/// win the argmax are as large (about 16 + 17 at most), and the shift would cost a fifth of a
/// short-row sample.
inline constexpr int kDirectNoiseBound = 16;

/// |x|, or 0 for -inf (a masked class): the magnitude that decides whether logits need the
/// shift, vectorised for the same reason as ExpFlushOp.
template <class T>
struct UnmaskedMagnitudeOp {
  T operator()(const T& x) const {
    return x == -std::numeric_limits<T>::infinity() ? T(0) : std::abs(x);
  }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet minus_inf = pset1<Packet>(-std::numeric_limits<T>::infinity());
    return pandnot(pabs(x), pcmp_eq(x, minus_inf));
  }
};

/// True when every logit is within [-kDirectNoiseBound, kDirectNoiseBound] or -inf.
template <class T>
bool small_logits(const T* logits, Index n) {
  return Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(logits, n)
             .unaryExpr(UnmaskedMagnitudeOp<T>())
             .maxCoeff() <= T(kDirectNoiseBound);
}

/// Writes p = (l - max l) + g for `rows` rows of length k (row r of the logits at logits + r k),
/// g being the noise of elements [first_row k, (first_row + rows) k) of the draw at block
/// `first`. Shifting before the noise is added keeps the noise at full precision next to huge
/// logits: l + g would round g to the logits' spacing (float rows [1e6, 1e6 - 1] would give
/// class 0 with frequency 0.739 instead of 0.731). Argmax and softmax do not see the shift.
/// Blocks of small logits (kDirectNoiseBound) take p = l + g, as precise there.
template <class T>
void perturb_block(const Generator& gen, std::uint64_t first, Index first_row, Index rows, Index k,
                   const T* logits, T* p) {
  if (small_logits(logits, rows * k)) {
    perturbed_range(gen, first, first_row * k, rows * k, logits, T(0), p);
    return;
  }
  if (rows == 1) {
    perturbed_range(gen, first, first_row * k, k, logits, finite_max_or_zero(logits, k), p);
    return;
  }
  // Several rows only when they are short: rows * k <= kSamplingBlock (sampling_block_rows).
  alignas(64) T shifted[kSamplingBlock];
  shift_rows_by_max(logits, rows, k, shifted);
  perturbed_range(gen, first, first_row * k, rows * k, shifted, T(0), p);
}

/// Writes p = (logits - max) + g for row i (noise from the draw at block `first`) and returns
/// the index of the largest p, or -1 when the row is unusable (all -inf, or +inf / NaN).
template <class T>
Index perturb_row(const Generator& gen, std::uint64_t first, Index i, const T* logits, T* p,
                  Index k) {
  perturb_block(gen, first, i, 1, k, logits, p);
  return row_argmax(p, k);
}

}  // namespace gumbel::detail

namespace Eigen::internal {
template <class T>
struct functor_traits<gumbel::detail::UnmaskedMagnitudeOp<T>> {
  enum { Cost = 3, PacketAccess = packet_traits<T>::HasAbs };
};
}  // namespace Eigen::internal
