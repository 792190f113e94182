// Generic kernels over rows: maximum, argmax, softmax and its backward, one-hot rows, shifts by
// the row maximum. For double they are Eigen expressions. For float they are the twins of the
// AVX-512 kernels (core/simd/avx512/rows.hpp), with the same exponential (generic/math.hpp) and
// the same order of additions in every sum, so that they return the same bits.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/simd/blocks.hpp"
#include "gumbel/core/simd/generic/math.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail::generic {

template <class T>
using RowArray = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
template <class T>
using ConstRowArray = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

/// The sum of 16 lanes in the vector kernels' order: halves, then quarters, pairs, neighbours
/// (lane i + lane i ^ 8, and so on).
inline float lane_sum(const float (&v)[16]) noexcept {
  float h[8];
  for (int i = 0; i < 8; ++i) h[i] = v[i] + v[i + 8];
  const float q[4] = {h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]};
  return (q[0] + q[2]) + (q[1] + q[3]);
}

/// The sum of a row in 16 lanes (entry j into lane j mod 16), then lane_sum: the order of the
/// vector softmax over rows of any length.
inline float lane_row_sum(const float* row, Index k) noexcept {
  float lanes[16] = {};
  Index j = 0;
  for (; j + 16 <= k; j += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] += row[j + l];
  }
  for (int l = 0; j + l < k; ++l) lanes[l] += row[j + l];
  return lane_sum(lanes);
}

/// The sum of a row left to right: the order of the vector softmax over short rows (one row per
/// lane).
inline float sequential_row_sum(const float* row, Index k) noexcept {
  float s = 0.0f;
  for (Index j = 0; j < k; ++j) s += row[j];
  return s;
}

/// The largest entry of a row in `max`; false when the row has no finite maximum (all -inf, or
/// a +inf or NaN anywhere).
template <class T>
bool row_max(const T* row, Index k, T& max) {
  max = ConstRowArray<T>(row, k).template maxCoeff<Eigen::PropagateNaN>();
  return std::isfinite(max);
}

/// The index of the first largest entry of a row, or -1 when the row has no finite maximum.
template <class T>
Index row_argmax(const T* row, Index k) {
  T m;
  if (!row_max(row, k, m)) return -1;
  Index j = 0;
  while (row[j] != m) ++j;
  return j;
}

/// argmax[r] = row_argmax of each row of a block; returns the first unusable row, or -1.
template <class T>
Index block_argmax(const T* block, Index rows, Index k, Index* argmax) {
  for (Index r = 0; r < rows; ++r) {
    argmax[r] = row_argmax(block + r * k, k);
    if (argmax[r] < 0) return r;
  }
  return -1;
}

/// In place, for each of `rows` rows of length k: row <- softmax(row * inv_tau), given each
/// row's maximum. The exponential runs once over the whole block. Float rows are summed in 16
/// lanes, or left to right with `sequential` (the orders of the two vector kernels).
template <class T>
void softmax_block(T* block, Index rows, Index k, const T* row_max, T inv_tau,
                   bool sequential = false) {
  if constexpr (std::is_same_v<T, float>) {
    // e^((x - max) / tau) = 2^((x - max) scale), scale = log2(e) / tau, as the vector kernels.
    const float scale = inv_tau * kLog2e;
    for (Index r = 0; r < rows; ++r) {
      float* row = block + r * k;
      const float max = row_max[r];
      for (Index j = 0; j < k; ++j) row[j] = (row[j] - max) * scale;
    }
    for (Index j = 0; j < rows * k; ++j) block[j] = exp2_flush(block[j]);
    for (Index r = 0; r < rows; ++r) {
      float* row = block + r * k;
      const float inv_sum = 1.0f / (sequential ? sequential_row_sum(row, k) : lane_row_sum(row, k));
      for (Index j = 0; j < k; ++j) row[j] *= inv_sum;
    }
  } else {
    (void)sequential;
    for (Index r = 0; r < rows; ++r) {
      RowArray<T> row(block + r * k, k);
      row = (row - row_max[r]) * inv_tau;
    }
    RowArray<T> all(block, rows * k);
    all = exp_flush(all);
    for (Index r = 0; r < rows; ++r) {
      RowArray<T> row(block + r * k, k);
      row *= T(1) / row.sum();
    }
  }
}

/// Overwrites `rows` rows of length k with the one-hot rows of argmax.
template <class T>
void write_one_hot(T* block, Index rows, Index k, const Index* argmax) {
  RowArray<T>(block, rows * k).setZero();
  for (Index r = 0; r < rows; ++r) block[r * k + argmax[r]] = T(1);
}

/// In place, for each of `rows` rows of length k: row <- softmax(row * inv_tau). With
/// `one_hot` given, also writes there the one-hot rows of each row's row_argmax (taken before
/// the softmax). Returns the first unusable row (the block is then unfinished), or -1. Float
/// rows of at most kShortRow are summed left to right, longer ones in 16 lanes.
template <class T>
Index softmax_rows(T* block, Index rows, Index k, T inv_tau, T* one_hot = nullptr) {
  Index argmax[kMaxBlockRows];
  T max[kMaxBlockRows];
  for (Index r = 0; r < rows; ++r) {
    const T* row = block + r * k;
    const bool usable = one_hot ? (argmax[r] = row_argmax(row, k)) >= 0 : row_max(row, k, max[r]);
    if (!usable) return r;
    if (one_hot) max[r] = row[argmax[r]];
  }
  softmax_block(block, rows, k, max, inv_tau, k <= kShortRow);
  if (one_hot) write_one_hot(one_hot, rows, k, argmax);
  return -1;
}

/// out = row - max(row) for each of `rows` rows of k values; a row without a finite maximum is
/// copied unchanged.
template <class T>
void shift_rows_by_max(const T* block, Index rows, Index k, T* out) {
  for (Index r = 0; r < rows; ++r) {
    const T* row = block + r * k;
    T max;
    if (!row_max(row, k, max)) max = T(0);
    RowArray<T>(out + r * k, k) = ConstRowArray<T>(row, k) - max;
  }
}

/// The backward of softmax rows of at most 16 floats for the logits:
/// dl = (s * (dy - <dy, s>)) * inv_tau, assigned to dl or added to it, the dot product summed as
/// lane_sum sums one entry per lane.
inline void softmax_short_rows_backward(const float* s, const float* dy, float* dl, Index rows,
                                        Index k, float inv_tau, bool assign) {
  for (Index r = 0; r < rows; ++r) {
    const float* sr = s + r * k;
    const float* dyr = dy + r * k;
    float* out = dl + r * k;
    float lanes[16] = {};
    for (Index j = 0; j < k; ++j) lanes[j] = sr[j] * dyr[j];
    const float dot = lane_sum(lanes);
    for (Index j = 0; j < k; ++j) {
      const float dz = (sr[j] * (dyr[j] - dot)) * inv_tau;
      out[j] = assign ? dz : out[j] + dz;
    }
  }
}

/// Gumbel noise in place of the uniforms in out[0, count): out[j] = g_j, or
/// (shift[j] - offset) + g_j when shift is given.
inline void gumbel_from_uniforms(float* out, Index count, const float* shift, float offset) {
  for (Index j = 0; j < count; ++j) out[j] = gumbel_from_uniform(out[j]);
  if (shift) {
    for (Index j = 0; j < count; ++j) out[j] = (shift[j] + -offset) + out[j];
  }
}

}  // namespace gumbel::detail::generic
