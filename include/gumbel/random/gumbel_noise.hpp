// Standard Gumbel noise, g = -ln(-ln u) with u uniform on the open interval (0, 1).
#pragma once

#include <Eigen/Core>

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
    for (Index j = 0; j < count; ++j) out[j] = -detail::log_positive(-detail::log_positive(out[j]));
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
