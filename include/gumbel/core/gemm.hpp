// Matrix products that never touch the heap once warm.
//
// Eigen's `dst.noalias() += a * b` packs panels of a and b into buffers it allocates on every
// call once they outgrow EIGEN_STACK_ALLOCATION_LIMIT (each VAE step did so 19 times). Here the
// same Eigen kernel runs on packing buffers that each thread keeps and only ever grows, and
// large products split their output rows among the OpenMP threads.
#pragma once

#include <Eigen/Core>
#include <type_traits>

#include "gumbel/core/parallel.hpp"
#include "gumbel/core/simd/dispatch.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::detail {

/// A row-major buffer seen as a logical rows x cols operand, possibly through a transpose.
template <class T>
struct GemmOperand {
  const T* data;
  Index rows;  // logical shape, after the transpose
  Index cols;
  Index stride;  // distance between rows of the stored (row-major) buffer
  bool transposed;

  /// The operand restricted to logical rows [begin, begin + count).
  GemmOperand row_block(Index begin, Index count) const {
    return {data + (transposed ? begin : begin * stride), count, cols, stride, transposed};
  }
};

template <class T, class Map>
GemmOperand<T> as_operand(const Map& m) {
  return {m.data(), m.rows(), m.cols(), m.outerStride(), false};
}
template <class T, class Map>
GemmOperand<T> as_transposed(const Map& m) {
  return {m.data(), m.cols(), m.rows(), m.outerStride(), true};
}

/// Per-thread packing space for Eigen's blocked product; grows, never shrinks.
template <class T>
class GemmBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  GemmBlocking(Index rows, Index cols, Index depth) {
    // Eigen solves a row-major product as the transposed column-major one: m and n swap.
    this->m_mc = cols;
    this->m_nc = rows;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<T, T, 1, Index>(this->m_kc, this->m_mc, this->m_nc,
                                                                 1);
    // Round the first block up to 64 bytes so the second one stays aligned for any packet.
    constexpr Index kAlign = 64 / Index{sizeof(T)};
    const Index size_a = (this->m_mc * this->m_kc + kAlign - 1) / kAlign * kAlign;
    const Index size_b = this->m_kc * this->m_nc;
    auto& space = workspace();
    if (space.size() < size_a + size_b) space.resize(size_a + size_b);
    this->m_blockA = space.data();
    this->m_blockB = space.data() + size_a;
  }

 private:
  static Eigen::Matrix<T, Eigen::Dynamic, 1>& workspace() {
    thread_local Eigen::Matrix<T, Eigen::Dynamic, 1> space;
    return space;
  }
};

template <class T, int LhsOrder, int RhsOrder>
void gemm_kernel(T* dst, Index dst_stride, const GemmOperand<T>& a, const GemmOperand<T>& b,
                 T alpha) {
  GemmBlocking<T> blocking(a.rows, b.cols, a.cols);
  Eigen::internal::general_matrix_matrix_product<Index, T, LhsOrder, false, T, RhsOrder, false,
                                                 Eigen::RowMajor, 1>::run(a.rows, b.cols, a.cols,
                                                                          a.data, a.stride, b.data,
                                                                          b.stride, dst, 1,
                                                                          dst_stride, alpha,
                                                                          blocking);
}

/// Eigen's blocked product on our packing space, for any operand layout.
template <class T>
void gemm_serial_eigen(T* dst, Index dst_stride, const GemmOperand<T>& a, const GemmOperand<T>& b,
                       T alpha) {
  constexpr int R = Eigen::RowMajor;
  constexpr int C = Eigen::ColMajor;
  // A transposed row-major buffer is the same memory read column-major.
  if (!a.transposed && !b.transposed) gemm_kernel<T, R, R>(dst, dst_stride, a, b, alpha);
  if (!a.transposed && b.transposed) gemm_kernel<T, R, C>(dst, dst_stride, a, b, alpha);
  if (a.transposed && !b.transposed) gemm_kernel<T, C, R>(dst, dst_stride, a, b, alpha);
  if (a.transposed && b.transposed) gemm_kernel<T, C, C>(dst, dst_stride, a, b, alpha);
}

/// dst += alpha a b, or dst = alpha a b with `assign` (a.cols > 0): the vector kernel then never
/// reads dst; Eigen's adds into zeros, the same bits.
template <class T>
void gemm_serial(T* dst, Index dst_stride, const GemmOperand<T>& a, const GemmOperand<T>& b,
                 T alpha, bool assign = false) {
  // Every float product, however few its rows: a product split among threads must sum each
  // element in the same order in every slice.
  if constexpr (std::is_same_v<T, float>) {
    if (kernels::vector_gemm(dst, dst_stride, a, b, alpha, assign)) return;
  }
  if (assign) {
    Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>(dst, a.rows, b.cols,
                                                   Eigen::OuterStride<>(dst_stride))
        .setZero();
  }
  gemm_serial_eigen(dst, dst_stride, a, b, alpha);
}

/// dst += alpha * a * b, or with `assign` dst = alpha * a * b without reading dst (which may
/// hold anything, NaN included), for a row-major dst whose shape the caller has checked.
template <class T>
void gemm_into(MatrixMap<T> dst, const GemmOperand<T>& a, const GemmOperand<T>& b, T alpha,
               bool assign) {
  if (a.rows == 0 || b.cols == 0) return;
  if (a.cols == 0) {  // an empty sum
    if (assign) dst.setZero();
    return;
  }
  // Tiny products: Eigen's coefficient-wise product beats packing (Eigen draws the line at 20).
  if (a.rows + b.cols + a.cols < 20) {
    if (assign) dst.setZero();
    using Stride = Eigen::OuterStride<>;
    using RowMap = Eigen::Map<const Matrix<T>, 0, Stride>;
    using ColMap = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>, 0, Stride>;
    const auto product = [&](const auto& lhs) {
      if (b.transposed) {
        dst.noalias() += alpha * lhs.lazyProduct(ColMap(b.data, b.rows, b.cols, Stride(b.stride)));
      } else {
        dst.noalias() += alpha * lhs.lazyProduct(RowMap(b.data, b.rows, b.cols, Stride(b.stride)));
      }
    };
    if (a.transposed) {
      product(ColMap(a.data, a.rows, a.cols, Stride(a.stride)));
    } else {
      product(RowMap(a.data, a.rows, a.cols, Stride(a.stride)));
    }
    return;
  }
  const Index flops_per_row = b.cols * a.cols;
  const int threads = max_threads();
  if (threads <= 1 || detail::in_parallel() || a.rows < 2 * threads ||
      a.rows * flops_per_row < (Index{1} << 21)) {
    gemm_serial(dst.data(), dst.outerStride(), a, b, alpha, assign);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const Index parts = omp_get_num_threads();
    const Index part = omp_get_thread_num();
    // Split on rows; each thread packs its own slice into its own workspace.
    const Index begin = a.rows * part / parts;
    const Index end = a.rows * (part + 1) / parts;
    if (end > begin) {
      gemm_serial(dst.data() + begin * dst.outerStride(), dst.outerStride(),
                  a.row_block(begin, end - begin), b, alpha, assign);
    }
  }
#endif
}

/// dst += alpha * a * b for a row-major dst whose shape the caller has checked.
template <class T>
void gemm_accumulate(MatrixMap<T> dst, const GemmOperand<T>& a, const GemmOperand<T>& b,
                     T alpha = T(1)) {
  gemm_into(dst, a, b, alpha, false);
}

/// dst = alpha * a * b, dst's old contents never read.
template <class T>
void gemm_assign(MatrixMap<T> dst, const GemmOperand<T>& a, const GemmOperand<T>& b,
                 T alpha = T(1)) {
  gemm_into(dst, a, b, alpha, true);
}

}  // namespace gumbel::detail
