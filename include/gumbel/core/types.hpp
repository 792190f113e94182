// Matrix types shared by the whole library.
//
// Layout: row-major, one sample per row (batch x features), as in PyTorch. A softmax over the
// K classes of a row then reads contiguous memory, and viewing (B, N*K) as (B*N, K) is free.
#pragma once

#include <Eigen/Core>

namespace gumbel {

using Index = Eigen::Index;

/// Dense row-major matrix: the value of every tape node.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Indices, one per row (sampled classes, labels).
using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

/// A row vector (1 x n), e.g. a bias.
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic, Eigen::RowMajor>;

/// Views over tape memory; the arena aligns every buffer for Eigen's widest packets.
template <class T>
using MatrixMap = Eigen::Map<Matrix<T>, Eigen::AlignedMax>;
template <class T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>, Eigen::AlignedMax>;

/// How a loss combines its per-element (or per-row) terms, as PyTorch's `reduction=`.
enum class Reduction { none, sum, mean };

}  // namespace gumbel
