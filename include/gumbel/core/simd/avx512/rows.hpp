// AVX-512 kernels over rows of floats: maximum, argmax, softmax and its backward, one-hot rows,
// shifts by the row maximum. Rows of at most 16 floats go 16 at a time through a transpose in
// registers. Each has a generic twin of the same name in core/simd/generic/rows.hpp that returns
// the same bits; core/simd/dispatch.hpp chooses.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX512

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gumbel/core/simd/avx512/math.hpp"
#include "gumbel/core/simd/blocks.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail::avx512 {

/// max(v) or sum(v) in every lane: four swap-and-combine steps (halves, quarters, pairs,
/// neighbours), with no trip through a scalar register.
template <class Combine>
__m512 all_lanes(__m512 v, Combine combine) {
  v = combine(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  v = combine(v, _mm512_shuffle_f32x4(v, v, 0xB1));
  v = combine(v, _mm512_permute_ps(v, 0x4E));
  return combine(v, _mm512_permute_ps(v, 0xB1));
}
inline __m512 all_lanes_max(__m512 v) {
  return all_lanes(v, [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); });
}
inline __m512 all_lanes_sum(__m512 v) {
  return all_lanes(v, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
}

/// The largest entry of a row in `max`, with the NaN check in the same pass; false when the row
/// has no finite maximum (all -inf, or a +inf or NaN anywhere).
inline bool row_max(const float* row, Index k, float& max) {
  const __m512 minus_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 best = minus_inf;
  __mmask16 nan = 0;
  for (Index j = 0; j < k; j += 16) {
    const __m512 v = _mm512_mask_loadu_ps(minus_inf, first_lanes(k - j), row + j);
    best = _mm512_max_ps(best, v);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  max = _mm512_cvtss_f32(all_lanes_max(best));
  return nan == 0 && std::isfinite(max);
}

/// The first index of the row's largest entry (-1 as row_max fails), in one pass: each lane keeps
/// its maximum and the first column where it rose to it; the first column of the row's maximum is
/// then the least among the lanes that hold it.
inline Index row_argmax(const float* row, Index k) {
  const __m512 minus_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 best = minus_inf;
  __m512i where = _mm512_setzero_si512();
  __m512i column = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  __mmask16 nan = 0;
  for (Index j = 0; j < k; j += 16) {
    const __m512 v = _mm512_mask_loadu_ps(minus_inf, first_lanes(k - j), row + j);
    where = _mm512_mask_mov_epi32(where, _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ), column);
    best = _mm512_max_ps(best, v);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    column = _mm512_add_epi32(column, step);
  }
  const __m512 max = all_lanes_max(best);
  if (nan != 0 || !std::isfinite(_mm512_cvtss_f32(max))) return -1;
  const __mmask16 holders = _mm512_cmp_ps_mask(best, max, _CMP_EQ_OQ);
  return _mm512_mask_reduce_min_epi32(holders, where);
}

/// e^((x - max) / tau) = 2^((x - max) scale) with scale = log2(e) / tau.
inline __m512 softmax_power(__m512 x, __m512 max, __m512 scale) {
  return exp2_flush(_mm512_mul_ps(_mm512_sub_ps(x, max), scale));
}
inline __m512 softmax_scale(float inv_tau) {
  return _mm512_set1_ps(inv_tau * kLog2e);
}

/// softmax_block: one pass for the powers and their sum, one to normalise.
inline void softmax_block(float* block, Index rows, Index k, const float* row_max, float inv_tau) {
  const __m512 scale = softmax_scale(inv_tau);
  for (Index r = 0; r < rows; ++r) {
    float* row = block + r * k;
    const __m512 max = _mm512_set1_ps(row_max[r]);
    __m512 sum = _mm512_setzero_ps();
    for (Index j = 0; j < k; j += 16) {
      const __mmask16 lanes = first_lanes(k - j);
      const __m512 e = softmax_power(_mm512_maskz_loadu_ps(lanes, row + j), max, scale);
      sum = _mm512_mask_add_ps(sum, lanes, sum, e);
      _mm512_mask_storeu_ps(row + j, lanes, e);
    }
    const __m512 inv_sum = _mm512_div_ps(_mm512_set1_ps(1.0f), all_lanes_sum(sum));
    for (Index j = 0; j < k; j += 16) {
      const __mmask16 lanes = first_lanes(k - j);
      _mm512_mask_storeu_ps(row + j, lanes,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + j), inv_sum));
    }
  }
}

// Rows of at most 16 floats go 16 at a time through a transpose in registers: lane i of
// column j is entry j of row i, so a row's maximum, argmax, sum and quotient are lane-wise
// operations over k columns.

/// Loads rows [r0, r0 + group) of `block` as columns (rows past the group repeat its last row)
/// and their maxima; returns the lanes of the group's unusable rows (a NaN, or a maximum of +inf
/// or -inf).
inline __mmask16 load_short_rows_mask(const float* block, Index r0, Index group, Index k,
                                      __m512 (&column)[16], __m512& max) {
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  const __m512 minus_inf = _mm512_sub_ps(_mm512_setzero_ps(), inf);
  for (Index i = 0; i < 16; ++i) {
    column[i] =
        _mm512_mask_loadu_ps(minus_inf, first_lanes(k), block + (r0 + std::min(i, group - 1)) * k);
  }
  transpose16x16(column);
  max = column[0];
  __mmask16 nan = _mm512_cmp_ps_mask(column[0], column[0], _CMP_UNORD_Q);
  for (Index j = 1; j < k; ++j) {
    max = _mm512_max_ps(max, column[j]);
    nan |= _mm512_cmp_ps_mask(column[j], column[j], _CMP_UNORD_Q);
  }
  return (nan | _mm512_cmp_ps_mask(_mm512_abs_ps(max), inf, _CMP_NLT_UQ)) & first_lanes(group);
}

/// load_short_rows_mask, returning the first unusable row of the group instead, or -1.
inline Index load_short_rows(const float* block, Index r0, Index group, Index k,
                             __m512 (&column)[16], __m512& max) {
  const __mmask16 bad = load_short_rows_mask(block, r0, group, k, column, max);
  return bad != 0 ? r0 + lowest_set_bit(bad) : -1;
}

/// argmax[r0 + i] = the first column of row i equal to its maximum (columns from last to
/// first, each overriding), for rows loaded by load_short_rows.
inline void short_rows_argmax(const __m512 (&column)[16], __m512 max, Index r0, Index group,
                              Index k, Index* argmax) {
  __m512i first = _mm512_setzero_si512();
  for (Index j = k - 1; j > 0; --j) {
    first = _mm512_mask_mov_epi32(first, _mm512_cmp_ps_mask(column[j], max, _CMP_EQ_OQ),
                                  _mm512_set1_epi32(static_cast<int>(j)));
  }
  first = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(column[0], max, _CMP_NEQ_UQ), first);
  alignas(64) std::int32_t index[16];
  _mm512_store_si512(index, first);
  for (Index i = 0; i < group; ++i) argmax[r0 + i] = index[i];
}

/// block_argmax for rows of at most 16 floats, 16 rows per transpose.
inline Index argmax_short_rows(const float* block, Index rows, Index k, Index* argmax) {
  for (Index r0 = 0; r0 < rows; r0 += 16) {
    const Index group = std::min<Index>(16, rows - r0);
    __m512 column[16];
    __m512 max;
    const Index bad = load_short_rows(block, r0, group, k, column, max);
    if (bad >= 0) return bad;
    short_rows_argmax(column, max, r0, group, k, argmax);
  }
  return -1;
}

/// softmax_rows for rows of at most 16 floats, 16 rows per transpose: the exponential runs
/// over k vectors instead of 16 part-filled ones. Rows are read from a copy of the block: in
/// place, a row's load touches the 64 bytes of the previous row's store and waits for it. They
/// are written with whole-vector stores, the part past a row's end landing on the next rows
/// before those are written (only the stores that would pass the block's end are masked).
/// Compiled apart with and without the argmax, which would otherwise cost the softmax alone
/// registers (3% at 3000 x 10).
template <bool WithArgmax>
Index softmax_short_rows(float* block, Index rows, Index k, float inv_tau, Index* argmax) {
  alignas(64) float copy[16 * kMaxBlockRows];
  std::copy_n(block, rows * k, copy);
  const __m512 scale = softmax_scale(inv_tau);
  const __mmask16 lanes = first_lanes(k);
  for (Index r0 = 0; r0 < rows; r0 += 16) {
    const Index group = std::min<Index>(16, rows - r0);
    __m512 v[16];
    __m512 max;
    const Index bad = load_short_rows(copy, r0, group, k, v, max);
    if (bad >= 0) return bad;
    if constexpr (WithArgmax) short_rows_argmax(v, max, r0, group, k, argmax);
    __m512 sum = _mm512_setzero_ps();
    for (Index j = 0; j < k; ++j) {
      v[j] = softmax_power(v[j], max, scale);
      sum = _mm512_add_ps(sum, v[j]);
    }
    // One division for 16 rows: the quotient rounded exactly, as the general path has it.
    const __m512 inv_sum = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    for (Index j = 0; j < k; ++j) v[j] = _mm512_mul_ps(v[j], inv_sum);
    transpose16x16(v);
    for (Index i = 0; i < group; ++i) {
      float* out = block + (r0 + i) * k;
      if ((r0 + i + 1) * k + (16 - k) <= rows * k) {
        _mm512_storeu_ps(out, v[i]);
      } else {
        _mm512_mask_storeu_ps(out, lanes, v[i]);
      }
    }
  }
  return -1;
}

/// One-hot rows of at most 16 floats from their argmax, one store per row (whole-vector
/// stores in row order, as in softmax_short_rows).
inline void one_hot_short_rows(float* out, Index rows, Index k, const Index* argmax) {
  const __mmask16 lanes = first_lanes(k);
  const __m512 one = _mm512_set1_ps(1.0f);
  for (Index r = 0; r < rows; ++r) {
    const __m512 row = _mm512_maskz_mov_ps(static_cast<__mmask16>(1u << argmax[r]), one);
    if ((r + 1) * k + (16 - k) <= rows * k) {
      _mm512_storeu_ps(out + r * k, row);
    } else {
      _mm512_mask_storeu_ps(out + r * k, lanes, row);
    }
  }
}

/// The backward of softmax rows of at most 16 floats: dl = (s * (dy - <dy, s>)) * inv_tau,
/// assigned or added to dl, four rows interleaved as in softmax_short_rows. Assigning rows are
/// stored whole (past a row's end onto the rows after it, written later); adding rows read dl
/// and are stored under a mask.
inline void softmax_short_rows_backward(const float* s, const float* dy, float* dl, Index rows,
                                        Index k, float inv_tau, bool assign) {
  const __mmask16 lanes = first_lanes(k);
  const __m512 scale = _mm512_set1_ps(inv_tau);
  constexpr Index kGroup = 4;
  for (Index r0 = 0; r0 < rows; r0 += kGroup) {
    const Index group = std::min(kGroup, rows - r0);
    __m512 dz[kGroup];
    for (Index q = 0; q < kGroup; ++q) {
      const Index r = r0 + std::min(q, group - 1);
      const __m512 sr = _mm512_maskz_loadu_ps(lanes, s + r * k);
      const __m512 dyr = _mm512_maskz_loadu_ps(lanes, dy + r * k);
      const __m512 dot = all_lanes_sum(_mm512_mul_ps(sr, dyr));
      dz[q] = _mm512_mul_ps(_mm512_mul_ps(sr, _mm512_sub_ps(dyr, dot)), scale);
    }
    for (Index q = 0; q < group; ++q) {
      float* out = dl + (r0 + q) * k;
      if (!assign) {
        _mm512_mask_storeu_ps(out, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, out), dz[q]));
      } else if ((r0 + q + 1) * k + (16 - k) <= rows * k) {
        _mm512_storeu_ps(out, dz[q]);
      } else {
        _mm512_mask_storeu_ps(out, lanes, dz[q]);
      }
    }
  }
}

/// out = row - max(row) for `rows` rows of at most 16 floats, 16 rows per transpose (unusable
/// rows are copied unshifted).
inline void shift_short_rows_by_max(const float* block, Index rows, Index k, float* out) {
  const __mmask16 lanes = first_lanes(k);
  for (Index r0 = 0; r0 < rows; r0 += 16) {
    const Index group = std::min<Index>(16, rows - r0);
    __m512 v[16];
    __m512 max;
    const __mmask16 bad = load_short_rows_mask(block, r0, group, k, v, max);
    max = _mm512_mask_mov_ps(max, bad, _mm512_setzero_ps());
    for (Index j = 0; j < k; ++j) v[j] = _mm512_sub_ps(v[j], max);
    transpose16x16(v);
    for (Index i = 0; i < group; ++i) _mm512_mask_storeu_ps(out + (r0 + i) * k, lanes, v[i]);
  }
}

/// Gumbel noise in place of the uniforms in out[0, count): out[j] = g_j, or
/// (shift[j] - offset) + g_j when shift is given.
inline void gumbel_from_uniforms(float* out, Index count, const float* shift, float offset) {
  const __m512 minus_offset = _mm512_set1_ps(-offset);
  const auto shifted = [&](Index j, __m512 g, __mmask16 lanes) {
    if (!shift) return g;
    return _mm512_add_ps(_mm512_add_ps(_mm512_maskz_loadu_ps(lanes, shift + j), minus_offset), g);
  };
  Index j = 0;
  for (; j + 16 <= count; j += 16) {
    const __m512 g = gumbel_from_uniform(_mm512_loadu_ps(out + j));
    _mm512_storeu_ps(out + j, shifted(j, g, 0xFFFF));
  }
  if (j < count) {
    const __mmask16 tail = first_lanes(count - j);
    const __m512 u = _mm512_mask_loadu_ps(_mm512_set1_ps(0.5f), tail, out + j);
    _mm512_mask_storeu_ps(out + j, tail, shifted(j, gumbel_from_uniform(u), tail));
  }
}

}  // namespace gumbel::detail::avx512

#endif
