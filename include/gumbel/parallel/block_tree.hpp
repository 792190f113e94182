// The fixed order in which the gradients of a batch's blocks of examples are summed: a binary
// tree over the blocks that does not depend on who computes them (threads, processes).
#pragma once

#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/types.hpp"

namespace gumbel::parallel {

/// Blocks [begin, end) of a batch; as a node of the summation tree, the sum of those blocks.
struct BlockSpan {
  Index begin = 0;
  Index end = 0;
  Index size() const { return end - begin; }
  bool operator==(const BlockSpan& o) const { return begin == o.begin && end == o.end; }
};

/// Where the tree splits a node of two or more blocks: sum[b, e) = sum[b, m) + sum[m, e) with
/// m = b + (e - b) / 2, the left sum rounded first. The root is [0, blocks).
inline Index tree_split(BlockSpan node) {
  return node.begin + node.size() / 2;
}

/// Appends to `out`, in order, the largest nodes under `node` that lie inside `range`: what a
/// worker holding the blocks `range` sums on its own (at most about 2 log2(blocks) nodes).
inline void tree_pieces(BlockSpan node, BlockSpan range, std::vector<BlockSpan>& out) {
  if (node.end <= range.begin || range.end <= node.begin || node.size() <= 0) return;
  if (range.begin <= node.begin && node.end <= range.end) {
    out.push_back(node);
    return;
  }
  const Index m = tree_split(node);
  tree_pieces({node.begin, m}, range, out);
  tree_pieces({m, node.end}, range, out);
}

/// The blocks worker `w` of `workers` holds: an even, contiguous share.
inline BlockSpan worker_blocks(Index blocks, Index workers, Index w) {
  return {blocks * w / workers, blocks * (w + 1) / workers};
}

/// The rows of block `b` when a batch of `rows` examples is cut into `blocks`: an even share,
/// [rows b / blocks, rows (b + 1) / blocks).
inline BlockSpan block_rows(Index rows, Index blocks, Index b) {
  return {rows * b / blocks, rows * (b + 1) / blocks};
}

/// A block count must be at least 1 (and at most 2^20, far above any batch's need).
inline void require_blocks(const char* op, Index blocks) {
  if (blocks < 1 || blocks > (Index{1} << 20)) {
    detail::fail<ValueError>(op, "blocks = ", blocks, " must lie in [1, 2^20]");
  }
}

}  // namespace gumbel::parallel
