// Single-precision matrix products for CPUs with AVX-512: C += alpha * A * B, or C = alpha * A *
// B without reading C (assign), row-major C.
//
// Why not Eigen's kernel: Eigen 3.4 computes 48x4 tiles, which leaves half of the 32 vector
// registers idle and needs a broadcast for every 3 multiply-adds; it reaches about 60% of the
// FMA peak on the VAE's products. Here each tile is Mr rows x 32 columns (Mr = 8 to 12): two
// loads and Mr broadcasts feed 2 Mr multiply-adds, and the tile reaches the peak when its
// panels are in cache.
//
// Blocking is the usual one: a block of B (kc x up to kNc columns) is packed into 32-column
// panels, a block of A (up to 16 Mr rows x kc) into Mr-row panels, and every tile runs over the
// whole depth kc with its B panel (at most 40 KB) in L1. The depth blocks depend on the depth
// alone, never on the rows, so a product split by rows among threads sums every element in the
// same order as on one thread: results do not depend on the thread count.
//
// A layer's forward product x W^T with a wide W and few rows of x runs transposed instead
// (product_swapped): W's rows are read in place, x is packed, and the tiles are stored
// transposed, each element with the same multiply-adds, so the same bits.
#pragma once

#include "gumbel/core/simd/config.hpp"

#if GUMBEL_AVX512

#include <immintrin.h>

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

#include "gumbel/core/simd/avx512/math.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail::avx512 {

inline constexpr Index kNr = 32;    // columns per tile: two 16-float registers per row
inline constexpr Index kNc = 2048;  // columns of B packed at once

/// dst[t * dst_stride + r] = src[r * src_stride + t] for t < depth (at most 16) and the lanes
/// r of `store`; rows r >= rows (at most 16) read as zero. A 16x16 transpose in registers:
/// packing a panel that runs across the stored rows costs 4 shuffles per 16 floats instead of
/// 16 scalar moves.
inline void transpose16(const float* src, Index src_stride, Index rows, Index depth, float* dst,
                        Index dst_stride, __mmask16 store) {
  const __mmask16 load = first_lanes(depth);
  __m512 r[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    r[i] = i < rows ? _mm512_maskz_loadu_ps(load, src + i * src_stride) : _mm512_setzero_ps();
  }
  transpose16x16(r);
#pragma GCC unroll 16
  for (int t = 0; t < 16; ++t) {
    if (t < depth) _mm512_mask_storeu_ps(dst + t * dst_stride, store, r[t]);
  }
}

/// acc rows [0, rows) and columns [0, cols) added into c as c += alpha * acc, or with `assign`
/// stored as c = alpha * acc + 0 (the bits of adding into zeros) without reading c.
template <int Mr>
inline void store_tile(const __m512 (&lo)[std::size_t{Mr}], const __m512 (&hi)[std::size_t{Mr}],
                       float* c, Index ldc, Index rows, Index cols, float alpha, bool assign) {
  const __m512 va = _mm512_set1_ps(alpha);
  if (cols == kNr) {
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < Mr; ++r) {
      if (r >= rows) break;
      float* row = c + r * ldc;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(lo[r], va, assign ? zero : _mm512_loadu_ps(row)));
      _mm512_storeu_ps(row + 16,
                       _mm512_fmadd_ps(hi[r], va, assign ? zero : _mm512_loadu_ps(row + 16)));
    }
    return;
  }
  const __mmask16 m0 = first_lanes(cols);
  const __mmask16 m1 = first_lanes(cols - 16);
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < Mr; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
    const __m512 old0 = assign ? zero : _mm512_maskz_loadu_ps(m0, row);
    const __m512 old1 = assign ? zero : _mm512_maskz_loadu_ps(m1, row + 16);
    _mm512_mask_storeu_ps(row, m0, _mm512_fmadd_ps(lo[r], va, old0));
    _mm512_mask_storeu_ps(row + 16, m1, _mm512_fmadd_ps(hi[r], va, old1));
  }
}

/// One Mr x 32 tile: a is an Mr-row panel (kc x Mr), b a 32-column panel (kc x 32).
template <int Mr>
inline void tile(Index kc, const float* a, const float* b, float* c, Index ldc, Index rows,
                 Index cols, float alpha, bool assign) {
  __m512 lo[std::size_t{Mr}];
  __m512 hi[std::size_t{Mr}];
#pragma GCC unroll 16
  for (int r = 0; r < Mr; ++r) {
    lo[r] = _mm512_setzero_ps();
    hi[r] = _mm512_setzero_ps();
  }
  for (Index k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * kNr);
    const __m512 b1 = _mm512_load_ps(b + k * kNr + 16);
#pragma GCC unroll 16
    for (int r = 0; r < Mr; ++r) {
      const __m512 av = _mm512_set1_ps(a[k * Mr + r]);
      lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
    }
  }
  store_tile<Mr>(lo, hi, c, ldc, rows, cols, alpha, assign);
}

/// Rows [i0, i0 + rows) and depth [k0, k0 + kc) of a, as panels of Mr rows (zero-padded).
template <int Mr, class Operand>
void pack_a(const Operand& a, Index i0, Index rows, Index k0, Index kc, float* out) {
  for (Index p = 0; p < rows; p += Mr) {
    const Index h = std::min<Index>(Mr, rows - p);
    float* panel = out + p * kc;
    if (a.transposed) {  // logical a(i, k) is stored at data[k * stride + i]
      for (Index k = 0; k < kc; ++k) {
        const float* src = a.data + (k0 + k) * a.stride + i0 + p;
        float* dst = panel + k * Mr;
        for (Index r = 0; r < h; ++r) dst[r] = src[r];
        for (Index r = h; r < Mr; ++r) dst[r] = 0.0f;
      }
    } else {  // a(i, k) at data[i * stride + k]: a transpose, 16 deep at a time
      const float* src = a.data + (i0 + p) * a.stride + k0;
      for (Index k = 0; k < kc; k += 16) {
        transpose16(src + k, a.stride, h, std::min<Index>(16, kc - k), panel + k * Mr, Mr,
                    first_lanes(Mr));
      }
    }
  }
}

/// Depth [k0, k0 + kc) and columns [j0, j0 + cols) of b, as panels of 32 columns (zero-padded).
template <class Operand>
void pack_b(const Operand& b, Index k0, Index kc, Index j0, Index cols, float* out) {
  for (Index j = 0; j < cols; j += kNr) {
    const Index w = std::min(kNr, cols - j);
    float* panel = out + j * kc;
    if (!b.transposed) {  // b(k, j) at data[k * stride + j]
      const __mmask16 m0 = first_lanes(w);
      const __mmask16 m1 = first_lanes(w - 16);
      for (Index k = 0; k < kc; ++k) {
        const float* src = b.data + (k0 + k) * b.stride + j0 + j;
        _mm512_store_ps(panel + k * kNr, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(panel + k * kNr + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
    } else {  // b(k, j) at data[j * stride + k]: a transpose, 16 x 16 at a time
      for (Index half = 0; half < kNr; half += 16) {
        const float* src = b.data + (j0 + j + half) * b.stride + k0;
        for (Index k = 0; k < kc; k += 16) {
          transpose16(src + k, b.stride, std::min<Index>(16, std::max<Index>(0, w - half)),
                      std::min<Index>(16, kc - k), panel + k * kNr + half, kNr, first_lanes(16));
        }
      }
    }
  }
}

/// Grow-only, 64-byte aligned packing space of the calling thread.
inline float* workspace(Index floats) {
  thread_local Eigen::Matrix<float, Eigen::Dynamic, 1> space;
  if (space.size() < floats) space.resize(floats);
  return space.data();
}

/// f(j0, cols, k0, kc) for each block of at most kNc of `n` columns and, within it, each depth
/// block in order: every element's depth blocks are added in the same order by both products.
template <class F>
void for_each_block(Index n, Index depth, Index kc_block, F&& f) {
  for (Index j0 = 0; j0 < n; j0 += kNc) {
    for (Index k0 = 0; k0 < depth; k0 += kc_block) {
      f(j0, std::min(kNc, n - j0), k0, std::min(kc_block, depth - k0));
    }
  }
}

/// c += alpha a b, or c = alpha a b with `assign` (c's first depth block is stored, not added).
template <int Mr, class Operand>
void product(float* c, Index ldc, const Operand& a, const Operand& b, float alpha, Index kc_block,
             bool assign = false) {
  const Index m = a.rows;
  const Index n = b.cols;
  const Index depth = a.cols;
  constexpr Index mc_block = 16 * Mr;
  const Index kc_max = std::min(kc_block, depth);
  const Index nc_max = (std::min(kNc, n) + kNr - 1) / kNr * kNr;
  const Index b_floats = kc_max * nc_max;
  float* packed_b = workspace(b_floats + mc_block * kc_max);
  float* packed_a = packed_b + b_floats;  // b_floats is a multiple of 32: stays aligned
  for_each_block(n, depth, kc_block, [&](Index jc, Index nc, Index pc, Index kc) {
    pack_b(b, pc, kc, jc, nc, packed_b);
    for (Index ic = 0; ic < m; ic += mc_block) {
      const Index mc = std::min(mc_block, m - ic);
      pack_a<Mr>(a, ic, mc, pc, kc, packed_a);
      for (Index jr = 0; jr < nc; jr += kNr) {
        const Index w = std::min(kNr, nc - jr);
        for (Index ir = 0; ir < mc; ir += Mr) {
          tile<Mr>(kc, packed_a + ir * kc, packed_b + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                   std::min<Index>(Mr, mc - ir), w, alpha, assign && pc == 0);
        }
      }
    }
  });
}

/// acc (Mr rows x 32 columns) added into c transposed: c[j * ldc + r] += alpha * acc(r, j) for
/// r < rows and j < cols, with the same multiply-add per element as store_tile (and as there,
/// `assign` adds to zeros instead of reading c).
template <int Mr>
inline void store_tile_transposed(const __m512 (&lo)[std::size_t{Mr}],
                                  const __m512 (&hi)[std::size_t{Mr}], float* c, Index ldc,
                                  Index rows, Index cols, float alpha, bool assign) {
  const __m512 va = _mm512_set1_ps(alpha);
  const __mmask16 lanes = first_lanes(rows);
  const __m512 zero = _mm512_setzero_ps();
  for (Index half = 0; half < 2; ++half) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      t[r] = r < Mr ? (half == 0 ? lo[r] : hi[r]) : _mm512_setzero_ps();
    }
    transpose16x16(t);
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      if (16 * half + j >= cols) return;
      float* row = c + (16 * half + j) * ldc;
      const __m512 old = assign ? zero : _mm512_maskz_loadu_ps(lanes, row);
      _mm512_mask_storeu_ps(row, lanes, _mm512_fmadd_ps(t[j], va, old));
    }
  }
}

/// One tile of the swapped product: Mr rows of a read where they lie (row r at a + r lda; rows
/// past `rows` repeat the last one, their sums never stored) against a 32-column panel of b,
/// stored transposed.
template <int Mr>
inline void tile_unpacked_a(Index kc, const float* a, Index lda, const float* b, float* c,
                            Index ldc, Index rows, Index cols, float alpha, bool assign) {
  __m512 lo[std::size_t{Mr}];
  __m512 hi[std::size_t{Mr}];
  const float* row[std::size_t{Mr}];
#pragma GCC unroll 16
  for (int r = 0; r < Mr; ++r) {
    lo[r] = _mm512_setzero_ps();
    hi[r] = _mm512_setzero_ps();
    row[r] = a + std::min<Index>(r, rows - 1) * lda;
  }
  for (Index k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * kNr);
    const __m512 b1 = _mm512_load_ps(b + k * kNr + 16);
#pragma GCC unroll 16
    for (int r = 0; r < Mr; ++r) {
      const __m512 av = _mm512_set1_ps(row[r][k]);
      lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
    }
  }
  store_tile_transposed<Mr>(lo, hi, c, ldc, rows, cols, alpha, assign);
}

/// c += alpha a b^T-stored, computed as its transpose: for b a transposed operand (a stored
/// n x depth matrix W, b = W^T) and a not transposed, c^T = W a^T, where W's rows are read in
/// place and only a is packed. Pays when W is much larger than a (a layer's weights against a
/// small batch): packing W would cost a transpose of all of it per product. Every element is
/// the same sequence of multiply-adds as in product(), so the same bits.
template <int Mr, class Operand>
void product_swapped(float* c, Index ldc, const Operand& a, const Operand& b, float alpha,
                     Index kc_block, bool assign = false) {
  const Index m = a.rows;
  const Index n = b.cols;
  const Index depth = a.cols;
  const Operand at{a.data, depth, m, a.stride, true};  // a^T: depth x m
  const Index kc_max = std::min(kc_block, depth);
  const Index nc_max = (std::min(kNc, m) + kNr - 1) / kNr * kNr;
  float* packed = workspace(kc_max * nc_max);
  for_each_block(m, depth, kc_block, [&](Index ic, Index nc, Index pc, Index kc) {
    pack_b(at, pc, kc, ic, nc, packed);
    for (Index jr = 0; jr < n; jr += Mr) {
      const float* w = b.data + jr * b.stride + pc;
      for (Index ir = 0; ir < nc; ir += kNr) {
        tile_unpacked_a<Mr>(kc, w, b.stride, packed + ir * kc, c + (ic + ir) * ldc + jr, ldc,
                            std::min<Index>(Mr, n - jr), std::min(kNr, nc - ir), alpha,
                            assign && pc == 0);
      }
    }
  });
}

/// Depth blocks of equal size, at most 320 deep (a 40 KB B panel).
inline Index depth_block(Index depth) {
  const Index blocks = (depth + 319) / 320;
  return (depth + blocks - 1) / blocks;
}

/// Whether product_swapped should run: b a transposed operand (a layer's weights W as W^T) at
/// least four times as wide as a is tall (a batch, or a thread's share of one). The swap saves
/// the transpose of all of W and pays for it with the padding of a's rows to 32-row tiles: it
/// wins where W comes back from L3 after each update, as in training, and loses a little with W
/// hot in L2 (docs/performance.md, "Two cores in training").
template <class Operand>
bool swap_pays(const Operand& a, const Operand& b) {
  return b.transposed && !a.transposed && b.cols >= 4 * a.rows;
}

/// The tile height (12, 10 or 8) that pads `rows` the least, the taller on a tie.
inline int tile_height(Index rows) {
  const auto padded = [rows](Index mr) { return (rows + mr - 1) / mr * mr; };
  if (padded(12) <= padded(10) && padded(12) <= padded(8)) return 12;
  return padded(10) <= padded(8) ? 10 : 8;
}

/// f(std::integral_constant<int, Mr>{}) for the tile height Mr of `rows`.
template <class F>
void with_tile_height(Index rows, F&& f) {
  switch (tile_height(rows)) {
    case 12:
      f(std::integral_constant<int, 12>{});
      break;
    case 10:
      f(std::integral_constant<int, 10>{});
      break;
    default:
      f(std::integral_constant<int, 8>{});
  }
}

/// c += alpha * a * b (c = alpha * a * b with `assign`; a.cols > 0), in tiles of the height
/// that wastes the fewest padded rows (of a, or of W when the product runs transposed).
template <class Operand>
void gemm(float* c, Index ldc, const Operand& a, const Operand& b, float alpha, bool assign) {
  const Index kc_block = depth_block(a.cols);
  if (swap_pays(a, b)) {
    with_tile_height(b.cols, [&](auto mr) {
      product_swapped<decltype(mr)::value>(c, ldc, a, b, alpha, kc_block, assign);
    });
    return;
  }
  with_tile_height(a.rows, [&](auto mr) {
    product<decltype(mr)::value>(c, ldc, a, b, alpha, kc_block, assign);
  });
}

}  // namespace gumbel::detail::avx512

#endif  // GUMBEL_AVX512
