// Standard Gumbel noise, g = -ln(-ln u) with u uniform on the open interval (0, 1).
#pragma once

#include <Eigen/Core>

#include "gumbel/core/fast_math_avx512.hpp"
#include "gumbel/core/numeric.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel {

/// Gumbel(0, 1) values for elements [begin, begin + count) of a draw that starts at block
/// `first` (see Generator::uniform_range): finite always, at most about 16.6 in float and 37.4
/// in double (the largest value the smallest uniform gives).
template <class T>
void gumbel_range(const Generator& gen, std::uint64_t first, Index begin, Index count, T* out) {
  gen.uniform_range(first, begin, count, out);
  if constexpr (std::is_same_v<T, float>) {
    // u in [2^-24, 1 - 2^-24] keeps both logarithms' arguments positive and normal.
#if defined(__AVX512F__)
    Index j = 0;
    for (; j + 16 <= count; j += 16) {
      _mm512_storeu_ps(out + j, detail::avx512::gumbel_from_uniform(_mm512_loadu_ps(out + j)));
    }
    if (j < count) {
      const __mmask16 tail = detail::avx512::first_lanes(count - j);
      const __m512 u = _mm512_mask_loadu_ps(_mm512_set1_ps(0.5f), tail, out + j);
      _mm512_mask_storeu_ps(out + j, tail, detail::avx512::gumbel_from_uniform(u));
    }
#else
    for (Index j = 0; j < count; ++j) out[j] = -detail::log_positive(-detail::log_positive(out[j]));
#endif
  } else {
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> g(out, count);
    g = -(-g.log()).log();
  }
}

/// A rows x cols matrix of Gumbel(0, 1) noise. Rows are filled in parallel when OpenMP is on;
/// the values do not depend on the number of threads.
template <class T>
Matrix<T> sample_gumbel(Generator& gen, Index rows, Index cols) {
  Matrix<T> g(rows, cols);
  const std::uint64_t first = gen.advance(Generator::blocks_for<T>(rows * cols));
  detail::parallel_rows(
      rows, cols, [&](Index i) { gumbel_range(gen, first, i * cols, cols, g.data() + i * cols); });
  return g;
}

}  // namespace gumbel
