// Standard Gumbel noise, g = -ln(-ln u) with u uniform on the open interval (0, 1).
#pragma once

#include <Eigen/Core>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/core/simd/dispatch.hpp"
#include "gumbel/core/sizes.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel {

namespace detail {

/// out[j] = g_j, or (shift[j] - offset) + g_j when shift is given, for the Gumbel noise g of
/// elements [begin, begin + count) of a draw: the noise and its shift in one pass over out.
template <class T>
void shifted_gumbel_range(const Generator& gen, std::uint64_t first, Index begin, Index count,
                          const T* shift, T offset, T* out) {
  gen.uniform_range(first, begin, count, out);
  if constexpr (std::is_same_v<T, float>) {
    // u in [2^-24, 1 - 2^-24] keeps both logarithms' arguments positive and normal.
    kernels::gumbel_from_uniforms(out, count, shift, offset);
  } else {
    Eigen::Map<Eigen::ArrayX<T>> g(out, count);
    g = -(-g.log()).log();
    if (shift) g += Eigen::Map<const Eigen::ArrayX<T>>(shift, count) - offset;
  }
}

}  // namespace detail

/// Gumbel(0, 1) values for elements [begin, begin + count) of a draw that starts at block
/// `first` (see Generator::uniform_range): finite always, at most about 16.6 in float and 37.4
/// in double (the largest value the smallest uniform gives).
template <class T>
void gumbel_range(const Generator& gen, std::uint64_t first, Index begin, Index count, T* out) {
  detail::shifted_gumbel_range(gen, first, begin, count, static_cast<const T*>(nullptr), T(0), out);
}

/// out[j] = (logits[j] - offset) + g_j: perturbed logits for the same elements as
/// gumbel_range, in the same pass as the noise. With the row's maximum as the offset, the noise
/// is added at full precision however large the logits are.
template <class T>
void perturbed_range(const Generator& gen, std::uint64_t first, Index begin, Index count,
                     const T* logits, T offset, T* out) {
  detail::shifted_gumbel_range(gen, first, begin, count, logits, offset, out);
}

/// A rows x cols matrix of Gumbel(0, 1) noise. Rows are filled in parallel when OpenMP is on;
/// the values do not depend on the number of threads.
template <class T>
Matrix<T> sample_gumbel(Generator& gen, Index rows, Index cols) {
  detail::checked_size<T>("sample_gumbel", rows, cols);
  Matrix<T> g(rows, cols);
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(rows * cols));
  detail::parallel_rows(
      rows, cols, [&](Index i) { gumbel_range(gen, first, i * cols, cols, g.data() + i * cols); });
  return g;
}

}  // namespace gumbel
