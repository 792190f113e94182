// The one place that chooses a kernel: the AVX-512 one where it is compiled in and switched on
// (core/simd/config.hpp), else the AVX2 one where there is one, else the generic twin. Callers
// use these and never name a set.
#pragma once

#include <type_traits>

#include "gumbel/core/simd/blocks.hpp"
#include "gumbel/core/simd/config.hpp"
#include "gumbel/core/simd/generic/philox.hpp"
#include "gumbel/core/simd/generic/rows.hpp"
#include "gumbel/core/types.hpp"

#if GUMBEL_AVX2
#include "gumbel/core/simd/avx2/philox.hpp"
#include "gumbel/core/simd/avx2/rows.hpp"
#endif
#if GUMBEL_AVX512
#include "gumbel/core/simd/avx512/gemm.hpp"
#include "gumbel/core/simd/avx512/philox.hpp"
#include "gumbel/core/simd/avx512/rows.hpp"
#endif

namespace gumbel::detail::kernels {

/// True when `set` is the one in use.
inline bool in_use(simd::KernelSet set) {
  return simd::kernel_set() == set;
}

/// True where a float kernel of the AVX-512 set runs (rows of at most up_to, if given).
template <class T>
bool vector(Index k = 0, Index up_to = 0) {
  return std::is_same_v<T, float> && in_use(simd::KernelSet::avx512) && (up_to == 0 || k <= up_to);
}

/// True where a float kernel of the AVX2 set runs.
template <class T>
bool vector2() {
  return std::is_same_v<T, float> && in_use(simd::KernelSet::avx2);
}

// Each function below: the AVX-512 kernel where that set is in use, the AVX2 one where that set
// is in use and has one, else the generic twin. For double only the generic kernels exist.
#if GUMBEL_AVX512
#define GUMBEL_VECTOR_CALL(condition, call) \
  if constexpr (std::is_same_v<T, float>) { \
    if (condition) return avx512::call;     \
  }
#else
#define GUMBEL_VECTOR_CALL(condition, call)
#endif
#if GUMBEL_AVX2
#define GUMBEL_AVX2_CALL(call)              \
  if constexpr (std::is_same_v<T, float>) { \
    if (vector2<T>()) return avx2::call;    \
  }
#else
#define GUMBEL_AVX2_CALL(call)
#endif

inline void philox4x32_10_batch(std::uint64_t first, std::uint64_t stream, PhiloxKey key,
                                PhiloxBatchWords& out) noexcept {
#if GUMBEL_AVX512
  if (in_use(simd::KernelSet::avx512)) return avx512::philox4x32_10_batch(first, stream, key, out);
#endif
#if GUMBEL_AVX2
  if (in_use(simd::KernelSet::avx2)) return avx2::philox4x32_10_batch(first, stream, key, out);
#endif
  generic::philox4x32_10_batch(first, stream, key, out);
}

/// See generic::uniform_floats. (With AVX-512 the compiler's vectorisation of the generic loop
/// is faster than the AVX2 kernel.)
inline void uniform_floats(const PhiloxBatchWords& words, float* dest) noexcept {
#if GUMBEL_AVX2
  if (in_use(simd::KernelSet::avx2)) return avx2::uniform_floats(words, dest);
#endif
  generic::uniform_floats(words, dest);
}

/// Gumbel noise in place of the float uniforms in out[0, count): g_j, or (shift[j] - offset) +
/// g_j when shift is given.
inline void gumbel_from_uniforms(float* out, Index count, const float* shift, float offset) {
#if GUMBEL_AVX512
  if (in_use(simd::KernelSet::avx512))
    return avx512::gumbel_from_uniforms(out, count, shift, offset);
#endif
#if GUMBEL_AVX2
  if (in_use(simd::KernelSet::avx2)) return avx2::gumbel_from_uniforms(out, count, shift, offset);
#endif
  generic::gumbel_from_uniforms(out, count, shift, offset);
}

/// See generic::row_max.
template <class T>
bool row_max(const T* row, Index k, T& max) {
  GUMBEL_VECTOR_CALL(vector<T>(), row_max(row, k, max))
  GUMBEL_AVX2_CALL(row_max(row, k, max))
  return generic::row_max(row, k, max);
}

/// See generic::row_argmax.
template <class T>
Index row_argmax(const T* row, Index k) {
  GUMBEL_VECTOR_CALL(vector<T>(), row_argmax(row, k))
  GUMBEL_AVX2_CALL(row_argmax(row, k))
  return generic::row_argmax(row, k);
}

/// See generic::block_argmax.
template <class T>
Index block_argmax(const T* block, Index rows, Index k, Index* argmax) {
  GUMBEL_VECTOR_CALL(vector<T>(k, kShortRow), argmax_short_rows(block, rows, k, argmax))
  for (Index r = 0; r < rows; ++r) {
    argmax[r] = row_argmax(block + r * k, k);
    if (argmax[r] < 0) return r;
  }
  return -1;
}

/// See generic::softmax_block (rows summed in 16 lanes).
template <class T>
void softmax_block(T* block, Index rows, Index k, const T* row_max, T inv_tau) {
  GUMBEL_VECTOR_CALL(vector<T>(), softmax_block(block, rows, k, row_max, inv_tau))
  GUMBEL_AVX2_CALL(softmax_block(block, rows, k, row_max, inv_tau))
  generic::softmax_block(block, rows, k, row_max, inv_tau);
}

/// See generic::write_one_hot.
template <class T>
void write_one_hot(T* block, Index rows, Index k, const Index* argmax) {
  GUMBEL_VECTOR_CALL(vector<T>(k, kShortRow), one_hot_short_rows(block, rows, k, argmax))
  generic::write_one_hot(block, rows, k, argmax);
}

/// See generic::softmax_rows.
template <class T>
Index softmax_rows(T* block, Index rows, Index k, T inv_tau, T* one_hot = nullptr) {
#if GUMBEL_AVX512
  if constexpr (std::is_same_v<T, float>) {
    if (vector<T>()) {
      Index argmax[kMaxBlockRows];
      if (k <= kShortRow) {
        if (one_hot == nullptr)
          return avx512::softmax_short_rows<false>(block, rows, k, inv_tau, nullptr);
        const Index bad = avx512::softmax_short_rows<true>(block, rows, k, inv_tau, argmax);
        if (bad < 0) avx512::one_hot_short_rows(one_hot, rows, k, argmax);
        return bad;
      }
      float max[kMaxBlockRows];
      for (Index r = 0; r < rows; ++r) {
        const float* row = block + r * k;
        const bool usable = one_hot ? (argmax[r] = avx512::row_argmax(row, k)) >= 0
                                    : avx512::row_max(row, k, max[r]);
        if (!usable) return r;
        if (one_hot) max[r] = row[argmax[r]];
      }
      avx512::softmax_block(block, rows, k, max, inv_tau);
      if (one_hot) generic::write_one_hot(one_hot, rows, k, argmax);
      return -1;
    }
  }
#endif
  GUMBEL_AVX2_CALL(softmax_rows(block, rows, k, inv_tau, one_hot))
  return generic::softmax_rows(block, rows, k, inv_tau, one_hot);
}

/// See generic::shift_rows_by_max.
template <class T>
void shift_rows_by_max(const T* block, Index rows, Index k, T* out) {
  GUMBEL_VECTOR_CALL(vector<T>(k, kShortRow), shift_short_rows_by_max(block, rows, k, out))
  generic::shift_rows_by_max(block, rows, k, out);
}

/// See generic::softmax_short_rows_backward (rows of at most kShortRow floats).
inline void softmax_short_rows_backward(const float* s, const float* dy, float* dl, Index rows,
                                        Index k, float inv_tau, bool assign) {
#if GUMBEL_AVX512
  if (in_use(simd::KernelSet::avx512))
    return avx512::softmax_short_rows_backward(s, dy, dl, rows, k, inv_tau, assign);
#endif
  generic::softmax_short_rows_backward(s, dy, dl, rows, k, inv_tau, assign);
}

/// c += alpha a b (c = alpha a b with `assign`, c unread) for row-major float c by the AVX-512
/// product, true; false (nothing done) where it does not run (the caller then uses Eigen's).
/// GUMBEL_EIGEN_GEMM keeps Eigen's everywhere.
template <class Operand>
bool vector_gemm(float* c, Index ldc, const Operand& a, const Operand& b, float alpha,
                 bool assign) {
#if GUMBEL_AVX512 && !defined(GUMBEL_EIGEN_GEMM)
  if (in_use(simd::KernelSet::avx512)) {
    avx512::gemm(c, ldc, a, b, alpha, assign);
    return true;
  }
#else
  (void)c, (void)ldc, (void)a, (void)b, (void)alpha, (void)assign;
#endif
  return false;
}

#undef GUMBEL_VECTOR_CALL
#undef GUMBEL_AVX2_CALL

}  // namespace gumbel::detail::kernels
