// How distributed::DataParallel lays out its exchange: the ranks' tree pieces, the gradients
// grouped into buckets and each bucket cut into one shard per rank, the buffers a bucket needs,
// and the messages that carry a bucket's pieces and shards between two ranks, in the one order
// both ends post them. No MPI call is made here. Include gumbel/distributed/mpi.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "gumbel/distributed/mpi_basics.hpp"
#include "gumbel/parallel/block_tree.hpp"

namespace gumbel::distributed::detail {

/// A tree node whose blocks one rank holds (parallel::tree_pieces).
struct Piece {
  parallel::BlockSpan span;
  int owner;
};

/// A bucket's elements are its slots one after another, each starting at a multiple of
/// kBucketAlign (so that every shard boundary is one inside each slot, where the optimizer's
/// sliced update gives the bits of a whole update); shard r is [bound[r], bound[r + 1]).
template <class T>
struct Bucket {
  std::vector<std::size_t> slots;
  std::vector<Index> offsets;
  Index elements = 0;
  std::vector<Index> bound;
  Index shard_begin = 0, shard_end = 0;  // this rank's
  std::vector<T> sums;      // exact: my pieces of several blocks, summed, one bucket each
  std::vector<T> receive;   // exact: other ranks' pieces of my shard, piece k at k * shard
  std::vector<T> gathered;  // fast: the bucket, all-reduced in place
  std::vector<MPI_Request> exchange, shared;  // exact: pieces in flight, shards in flight
  MPI_Request request = MPI_REQUEST_NULL;     // fast
  int stage = 0;  // 0 waiting for backward, 1 exchange posted, 2 shard summed

  Index shard() const { return shard_end - shard_begin; }
};

inline constexpr Index kBucketAlign = 64;

template <class T>
class Buckets {
 public:
  /// The buckets of `params` (in reverse order, at most bucket_bytes each unless one parameter
  /// is larger) for rank `rank` of `size`, each rank computing worker_blocks(blocks, size, r).
  Buckets(const ParameterList<T>& params, Index blocks, int rank, int size,
          std::size_t bucket_bytes, Reduction reduction)
      : rank_(rank), size_(size) {
    for (const Parameter<T>* p : params) sizes_.push_back(p->size());
    for (int r = 0; r < size; ++r) {
      const std::size_t before = pieces_.size();
      std::vector<parallel::BlockSpan> spans;
      parallel::tree_pieces({0, blocks}, parallel::worker_blocks(blocks, size, r), spans);
      for (const auto& sp : spans) pieces_.push_back({sp, r});
      pieces_of_.push_back({Index(before), Index(pieces_.size())});
    }
    group(std::max<std::size_t>(1, bucket_bytes / sizeof(T)));
    for (Bucket<T>& b : buckets_) cut(b, reduction);
  }

  std::size_t size() const { return buckets_.size(); }
  Bucket<T>& operator[](std::size_t k) { return buckets_[k]; }
  auto begin() { return buckets_.begin(); }
  auto end() { return buckets_.end(); }
  /// The bucket that holds parameter `slot`.
  std::size_t of(std::size_t slot) const { return bucket_of_[slot]; }

  /// Every rank's tree pieces, in block order; rank r's are pieces_of(r).
  const Piece& piece(Index k) const { return pieces_[std::size_t(k)]; }
  Index pieces() const { return Index(pieces_.size()); }
  parallel::BlockSpan pieces_of(int r) const { return pieces_of_[std::size_t(r)]; }
  /// The piece that is exactly `node`, or -1.
  Index find(parallel::BlockSpan node) const {
    for (std::size_t k = 0; k < pieces_.size(); ++k) {
      if (pieces_[k].span == node) return Index(k);
    }
    return -1;
  }

  Index longest_shard() const {
    Index n = 0;
    for (const Bucket<T>& b : buckets_) n = std::max(n, b.shard());
    return n;
  }
  Index largest() const {
    Index n = 0;
    for (const Bucket<T>& b : buckets_) n = std::max(n, b.elements);
    return n;
  }

  /// Calls f(slot, j, at, len) for the parts of bucket elements [begin, end) that lie in
  /// slots: elements [j, j + len) of slot `slot`, at bucket position `at`.
  template <class F>
  void for_each_part(const Bucket<T>& b, Index begin, Index end, F&& f) const {
    for (std::size_t i = 0; i < b.slots.size(); ++i) {
      const Index n = sizes_[b.slots[i]];
      const Index lo = std::max(begin, b.offsets[i]);
      const Index hi = std::min(end, b.offsets[i] + n);
      if (lo < hi) f(b.slots[i], lo - b.offsets[i], lo, hi - lo);
    }
  }

  /// The exact exchange of a bucket as messages, one per (piece, slot part), in the order both
  /// ends post them: f(send, peer, piece, slot, j, at, len). This rank receives every other
  /// rank's pieces of its shard and sends each other rank its pieces of that rank's shard.
  template <class F>
  void exchange_messages(const Bucket<T>& b, F&& f) const {
    const parallel::BlockSpan mine = pieces_of(rank_);
    for (int q = 0; q < size_; ++q) {
      if (q == rank_) continue;
      const parallel::BlockSpan theirs = pieces_of(q);
      for (Index p = theirs.begin; p < theirs.end; ++p) {
        for_each_part(
            b, b.shard_begin, b.shard_end,
            [&](std::size_t slot, Index j, Index at, Index n) { f(false, q, p, slot, j, at, n); });
      }
      for (Index p = mine.begin; p < mine.end; ++p) {
        for_each_part(
            b, b.bound[std::size_t(q)], b.bound[std::size_t(q) + 1],
            [&](std::size_t slot, Index j, Index at, Index n) { f(true, q, p, slot, j, at, n); });
      }
    }
  }

  /// Sharing each rank's shard of a bucket as messages, in the order both ends post them:
  /// f(send, peer, slot, j, len). This rank receives every other rank's shard and sends its own.
  template <class F>
  void shard_messages(const Bucket<T>& b, F&& f) const {
    for (int q = 0; q < size_; ++q) {
      if (q == rank_) continue;
      for_each_part(b, b.bound[std::size_t(q)], b.bound[std::size_t(q) + 1],
                    [&](std::size_t slot, Index j, Index, Index n) { f(false, q, slot, j, n); });
      for_each_part(b, b.shard_begin, b.shard_end,
                    [&](std::size_t slot, Index j, Index, Index n) { f(true, q, slot, j, n); });
    }
  }

 private:
  // Slots into buckets, last parameter first (backward finishes the last layers first).
  void group(std::size_t limit) {
    bucket_of_.resize(sizes_.size());
    for (std::size_t k = sizes_.size(); k-- > 0;) {
      const Index n = sizes_[k];
      if (buckets_.empty() ||
          (buckets_.back().elements > 0 && buckets_.back().elements + n > Index(limit))) {
        buckets_.emplace_back();
      }
      Bucket<T>& b = buckets_.back();
      b.slots.push_back(k);
      b.offsets.push_back(b.elements);
      b.elements += (n + kBucketAlign - 1) / kBucketAlign * kBucketAlign;
      bucket_of_[k] = buckets_.size() - 1;
    }
  }

  // A bucket's shards and the buffers and requests its reduction needs.
  void cut(Bucket<T>& b, Reduction reduction) {
    for (int r = 0; r <= size_; ++r) {
      b.bound.push_back(b.elements * r / size_ / kBucketAlign * kBucketAlign);
    }
    b.bound.back() = b.elements;
    b.shard_begin = b.bound[std::size_t(rank_)];
    b.shard_end = b.bound[std::size_t(rank_) + 1];
    if (reduction == Reduction::fast) {
      b.gathered.assign(std::size_t(b.elements), T(0));
      return;
    }
    const parallel::BlockSpan mine = pieces_of(rank_);
    bool summed = false;  // a piece of mine spans several blocks
    for (Index p = mine.begin; p < mine.end; ++p) summed |= piece(p).span.size() > 1;
    if (summed) b.sums.assign(std::size_t(mine.size() * b.elements), T(0));
    b.receive.resize(std::size_t(pieces() * b.shard()));
    std::size_t messages = 0;
    exchange_messages(b, [&](bool, int, Index, std::size_t, Index, Index, Index) { ++messages; });
    b.exchange.assign(messages, MPI_REQUEST_NULL);
    messages = 0;
    shard_messages(b, [&](bool, int, std::size_t, Index, Index) { ++messages; });
    b.shared.assign(messages, MPI_REQUEST_NULL);
  }

  int rank_;
  int size_;
  std::vector<Index> sizes_;                    // per slot
  std::vector<Piece> pieces_;                   // every rank's, in block order
  std::vector<parallel::BlockSpan> pieces_of_;  // per rank: its range of pieces_
  std::vector<Bucket<T>> buckets_;
  std::vector<std::size_t> bucket_of_;  // per slot
};

}  // namespace gumbel::distributed::detail
