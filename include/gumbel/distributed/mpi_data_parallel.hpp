// distributed::DataParallel: the fixed blocks of every global batch shared among MPI ranks
// (parallel/block_tree.hpp), their gradients summed in buckets that start while backward still
// runs, every rank ending with the same parameters. Include gumbel/distributed/mpi.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gumbel/distributed/mpi_basics.hpp"
#include "gumbel/optim/optimizer.hpp"
#include "gumbel/parallel/block_tree.hpp"
#include "gumbel/parallel/data_parallel.hpp"

namespace gumbel::distributed {

/// Data-parallel training over the ranks of a communicator. Construction broadcasts rank 0's
/// parameter values (collective). Each step is collective too: every rank calls step() with
/// the same global batch size. MPI must be initialised; only the thread that calls step()
/// makes MPI calls (MPI_THREAD_FUNNELED suffices).
///
/// With the exact reduction each rank updates only its shard of every bucket (the shard whose
/// sum it computed) and the ranks then share parameter values: the optimizer's state of other
/// shards is left behind on each rank until synchronize_state() (call it before saving the
/// optimizer, on every rank).
template <class T>
class DataParallel {
 public:
  DataParallel(ParameterList<T> params, MPI_Comm comm, Options options = {})
      : params_(std::move(params)),
        comm_(comm),
        rank_(distributed::rank(comm)),
        size_(distributed::size(comm)),
        options_(validated(options, size_)),
        local_(params_, options.blocks, options.threads,
               parallel::worker_blocks(options.blocks, Index(size_), Index(rank_))) {
    // Step results and failures travel on a communicator of their own, so that they never
    // interleave with the buckets' exchanges.
    detail::check(MPI_Comm_dup(comm, &control_), "MPI_Comm_dup");
    for (int r = 0; r < size_; ++r) {
      const parallel::BlockSpan held = parallel::worker_blocks(options_.blocks, size_, r);
      const std::size_t before = pieces_.size();
      std::vector<parallel::BlockSpan> spans;
      parallel::tree_pieces({0, options_.blocks}, held, spans);
      for (const auto& sp : spans) pieces_.push_back({sp, r});
      pieces_of_.push_back({Index(before), Index(pieces_.size())});
      loss_displs_.push_back(r == 0 ? 0 : loss_displs_.back() + loss_counts_.back());
      loss_counts_.push_back(int(held.size() + 1));
    }
    make_buckets();
    my_losses_.resize(std::size_t(local_.mine().size() + 1));
    all_.resize(std::size_t(loss_displs_.back() + loss_counts_.back()));
    block_losses_.resize(std::size_t(options_.blocks));
    Index depth = 0;
    for (Index n = 1; n < options_.blocks; n *= 2) ++depth;
    Index longest = 0;
    for (const Bucket& b : buckets_) longest = std::max(longest, b.shard_end - b.shard_begin);
    shard_temp_.resize(std::size_t(2 * depth * longest));
    slot_done_ = std::make_unique<std::atomic<Index>[]>(params_.size());
    bucket_pending_ = std::make_unique<std::atomic<Index>[]>(buckets_.size());
    broadcast_parameters(params_, comm_, 0);
  }

  ~DataParallel() { MPI_Comm_free(&control_); }
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  Index blocks() const { return options_.blocks; }
  /// The blocks this rank computes: an even, contiguous share.
  parallel::BlockSpan my_blocks() const { return local_.mine(); }
  /// The rows of a global batch of `rows` this rank computes: the rows its loss_of sees.
  parallel::BlockSpan my_rows(Index rows) const {
    const parallel::BlockSpan b = local_.mine();
    return {parallel::block_rows(rows, options_.blocks, b.begin).begin,
            parallel::block_rows(rows, options_.blocks, b.end - 1).end};
  }

  /// The gradient of a global batch of `rows` examples: `loss_of(tape, block, begin, end)` as
  /// for parallel::DataParallel::gradients, with global row numbers, called for this rank's
  /// blocks only. Every rank's parameters' `grad` is set to the sum over all blocks (exact:
  /// in tree order). Returns the global loss (all blocks' losses, in tree order, in double).
  /// A block that throws on any rank makes every rank throw a DistributedError naming the
  /// first failed rank and its message, after every exchange has completed (no rank hangs).
  template <class LossOf>
  double gradients(Index rows, LossOf&& loss_of) {
    return run(rows, loss_of, nullptr);
  }

  /// gradients() fused with the optimizer's update (begin_slices/update_slice); every rank
  /// ends with the same parameters (with the exact reduction each rank updates its shards and
  /// the ranks share the values; `p.grad` then holds the sum on this rank's shards only).
  template <class LossOf>
  double step(Index rows, LossOf&& loss_of, optim::Optimizer<T>& optimizer) {
    local_.bind_optimizer(optimizer);
    return run(rows, loss_of, &optimizer);
  }

  /// Makes every rank's optimizer state whole (collective): with the exact reduction each rank
  /// advances the state of its own shards only. Call it on every rank before saving the
  /// optimizer; nothing to do with the fast reduction.
  void synchronize_state(optim::Optimizer<T>& optimizer) {
    if (options_.reduction == Reduction::fast) return;
    local_.bind_optimizer(optimizer);
    for (const optim::StateBuffers<T>& state : optimizer.state()) {
      for (Bucket& b : buckets_) {
        share(b, [&](std::size_t slot) {
          return (*state.values)[local_.optimizer_index(slot)].data();
        });
      }
    }
  }

 private:
  struct Piece {
    parallel::BlockSpan span;
    int owner;
  };
  // A bucket's elements: its slots one after another, each starting at a multiple of kAlign
  // (so that every shard boundary is one inside each slot, where the optimizer's sliced update
  // gives the bits of a whole update); shard r is [bound[r], bound[r + 1]).
  struct Bucket {
    std::vector<std::size_t> slots;
    std::vector<Index> offsets;
    Index elements = 0;
    std::vector<Index> bound;
    Index shard_begin = 0, shard_end = 0;  // this rank's
    std::vector<T> send, receive, gathered;
    std::vector<int> send_counts, send_displs, receive_counts, receive_displs;
    std::vector<int> gather_counts, gather_displs;
    MPI_Request request = MPI_REQUEST_NULL;
    int stage = 0;  // 0 waiting for backward, 1 pieces exchanged, 2 shard summed, 3 done
  };
  static constexpr Index kAlign = 64;

  static Options validated(Options o, int ranks) {
    if (o.blocks < ranks) {
      gumbel::detail::fail<ValueError>("distributed::DataParallel", "blocks = ", o.blocks,
                                       " is below the number of ranks, ", ranks,
                                       ": every rank needs a block");
    }
    if (o.bucket_bytes < sizeof(T)) {
      gumbel::detail::fail<ValueError>("distributed::DataParallel",
                                       "bucket_bytes = ", o.bucket_bytes, " holds no element");
    }
    return o;
  }

  Index my_pieces() const {
    return pieces_of_[std::size_t(rank_)].end - pieces_of_[std::size_t(rank_)].begin;
  }

  void make_buckets() {
    const Index limit = Index(std::max<std::size_t>(1, options_.bucket_bytes / sizeof(T)));
    bucket_of_.resize(params_.size());
    for (std::size_t k = params_.size(); k-- > 0;) {
      const Index n = params_[k]->size();
      if (buckets_.empty() ||
          (buckets_.back().elements > 0 && buckets_.back().elements + n > limit)) {
        buckets_.emplace_back();
      }
      Bucket& b = buckets_.back();
      b.slots.push_back(k);
      b.offsets.push_back(b.elements);
      b.elements += (n + kAlign - 1) / kAlign * kAlign;
      bucket_of_[k] = buckets_.size() - 1;
    }
    const Index mine = my_pieces();
    for (Bucket& b : buckets_) {
      for (int r = 0; r <= size_; ++r) b.bound.push_back(b.elements * r / size_ / kAlign * kAlign);
      b.bound.back() = b.elements;
      b.shard_begin = b.bound[std::size_t(rank_)];
      b.shard_end = b.bound[std::size_t(rank_) + 1];
      const Index own = b.shard_end - b.shard_begin;
      b.gathered.assign(std::size_t(b.elements), T(0));
      if (options_.reduction == Reduction::fast) {
        if (mine > 1) part_.resize(std::max(part_.size(), std::size_t(b.elements)));
        continue;
      }
      b.send.assign(std::size_t(mine * b.elements), T(0));  // gaps between slots stay 0
      b.receive.resize(std::size_t(Index(pieces_.size()) * own));
      for (int r = 0; r < size_; ++r) {
        const Index shard = b.bound[std::size_t(r) + 1] - b.bound[std::size_t(r)];
        const Index theirs = pieces_of_[std::size_t(r)].end - pieces_of_[std::size_t(r)].begin;
        b.send_counts.push_back(detail::count(mine * shard));
        b.receive_counts.push_back(detail::count(theirs * own));
        b.gather_counts.push_back(detail::count(shard));
        b.send_displs.push_back(detail::count(mine * b.bound[std::size_t(r)]));
        b.gather_displs.push_back(detail::count(b.bound[std::size_t(r)]));
        b.receive_displs.push_back(
            detail::count(pieces_of_[std::size_t(r)].begin * own));  // pieces in block order
      }
    }
  }

  // Calls f(slot, j, at, len) for the parts of bucket elements [begin, end) that lie in
  // slots: elements [j, j + len) of slot `slot`, at bucket position `at`.
  template <class F>
  void for_each_part(const Bucket& b, Index begin, Index end, F&& f) const {
    for (std::size_t i = 0; i < b.slots.size(); ++i) {
      const Index n = params_[b.slots[i]]->size();
      const Index lo = std::max(begin, b.offsets[i]);
      const Index hi = std::min(end, b.offsets[i] + n);
      if (lo < hi) f(b.slots[i], lo - b.offsets[i], lo, hi - lo);
    }
  }

  template <class LossOf>
  double run(Index rows, LossOf& loss_of, optim::Optimizer<T>* optimizer) {
    const parallel::BlockSpan mine = local_.mine();
    for (std::size_t s = 0; s < params_.size(); ++s) slot_done_[s] = 0;
    for (std::size_t b = 0; b < buckets_.size(); ++b) {
      bucket_pending_[b] = Index(buckets_[b].slots.size());
      buckets_[b].stage = 0;
    }
    // Buckets become ready from any computing thread; only this thread posts exchanges.
    const auto ready = [&](Index, std::size_t slot) {
      if (slot_done_[slot].fetch_add(1) + 1 == mine.size()) {
        bucket_pending_[bucket_of_[slot]].fetch_sub(1);
      }
      if (on_caller_thread()) advance(false);
    };
    const std::exception_ptr error = local_.compute(rows, loss_of, ready);
    // A failed rank still posts every bucket (with whatever its buffers hold), so that no
    // rank waits for it forever; all ranks then learn of the failure and stop there.
    for (std::size_t b = 0; b < buckets_.size(); ++b) bucket_pending_[b] = 0;
    const int failed_rank = agree(error);
    advance(true);
    if (failed_rank >= 0) fail(failed_rank, error);
    if (options_.reduction == Reduction::fast) {
      if (optimizer != nullptr) local_.update(*optimizer);
    } else {
      if (optimizer != nullptr) optimizer->begin_slices();
      for (Bucket& b : buckets_) {
        if (optimizer != nullptr) {
          for_each_part(b, b.shard_begin, b.shard_end,
                        [&](std::size_t slot, Index j, Index, Index len) {
                          optimizer->update_slice(local_.optimizer_index(slot), j, j + len);
                        });
          share(b, [&](std::size_t slot) { return params_[slot]->value.data(); });
        } else {
          share(b, [&](std::size_t slot) { return params_[slot]->grad.data(); });
        }
      }
    }
    return loss_sum({0, options_.blocks});
  }

  static bool on_caller_thread() {
#ifdef _OPENMP
    return omp_get_thread_num() == 0;
#else
    return true;
#endif
  }

  // Posts each bucket's first exchange once backward has finished its parameters, and sums
  // the shards of those that have arrived; with `wait`, all of them. Buckets are posted in one
  // order on every rank (MPI matches collectives by order).
  void advance(bool wait) {
    for (std::size_t k = 0; k < buckets_.size(); ++k) {
      Bucket& b = buckets_[k];
      if (b.stage == 0) {
        if (bucket_pending_[k] > 0) return;  // backward has not finished its parameters
        post(b);
      }
      if (b.stage == 1) {
        int done = 0;
        if (wait) {
          detail::check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "MPI_Wait");
          done = 1;
        } else {
          detail::check(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        }
        if (!done) continue;
        if (options_.reduction == Reduction::fast) {
          for_each_part(b, 0, b.elements, [&](std::size_t slot, Index j, Index at, Index len) {
            std::copy_n(b.gathered.data() + at, len, params_[slot]->grad.data() + j);
          });
        } else {
          sum_shard(b);
        }
        b.stage = 2;
      }
    }
  }

  // This rank's part of a bucket, and the exchange that starts with it: exact, each of its
  // tree pieces cut into every rank's shard (MPI_Ialltoallv); fast, the sum of its pieces
  // (MPI_Iallreduce).
  void post(Bucket& b) {
    std::vector<T>& temp = local_.scratch();
    const Index first = pieces_of_[std::size_t(rank_)].begin;
    const Index last = pieces_of_[std::size_t(rank_)].end;
    if (options_.reduction == Reduction::fast) {
      for_each_part(b, 0, b.elements, [&](std::size_t slot, Index j, Index at, Index len) {
        T* out = b.gathered.data() + at;
        local_.node_sum(pieces_[std::size_t(first)].span, slot, j, len, out, temp);
        for (Index p = first + 1; p < last; ++p) {
          T* part = part_.data();
          local_.node_sum(pieces_[std::size_t(p)].span, slot, j, len, part, temp);
          Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(out, len) +=
              Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(part, len);
        }
      });
      detail::check(MPI_Iallreduce(MPI_IN_PLACE, b.gathered.data(), detail::count(b.elements),
                                   detail::mpi_type<T>(), MPI_SUM, comm_, &b.request),
                    "MPI_Iallreduce");
      b.stage = 1;
      return;
    }
    for (int q = 0; q < size_; ++q) {
      const Index lo = b.bound[std::size_t(q)];
      const Index len = b.bound[std::size_t(q) + 1] - lo;
      for (Index p = first; p < last; ++p) {
        T* dest = b.send.data() + b.send_displs[std::size_t(q)] + (p - first) * len - lo;
        for_each_part(b, lo, lo + len, [&](std::size_t slot, Index j, Index at, Index n) {
          local_.node_sum(pieces_[std::size_t(p)].span, slot, j, n, dest + at, temp);
        });
      }
    }
    detail::check(MPI_Ialltoallv(b.send.data(), b.send_counts.data(), b.send_displs.data(),
                                 detail::mpi_type<T>(), b.receive.data(), b.receive_counts.data(),
                                 b.receive_displs.data(), detail::mpi_type<T>(), comm_, &b.request),
                  "MPI_Ialltoallv");
    b.stage = 1;
  }

  // This rank's shard of the bucket summed over every rank's pieces in tree order, straight
  // into the parameters' gradients, slot part by slot part. Piece k (in block order) arrived at
  // receive + k * shard.
  void sum_shard(Bucket& b) {
    const Index len = b.shard_end - b.shard_begin;
    for_each_part(b, b.shard_begin, b.shard_end, [&](std::size_t slot, Index j, Index at, Index n) {
      const T* first = b.receive.data() + (at - b.shard_begin);
      tree_sum({0, options_.blocks}, first, len, n, params_[slot]->grad.data() + j, 0);
    });
  }

  // out[0, n) = the sum of `node`: a piece is read where it arrived (piece k at first + k *
  // stride), anything else summed from its children (in shard_temp_ at its depth and side).
  void tree_sum(parallel::BlockSpan node, const T* first, Index stride, Index n, T* out,
                Index depth) {
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    const auto piece = [&](parallel::BlockSpan c) -> const T* {
      for (std::size_t k = 0; k < pieces_.size(); ++k) {
        if (pieces_[k].span == c) return first + Index(k) * stride;
      }
      return nullptr;
    };
    const auto child = [&](parallel::BlockSpan c, Index side) -> const T* {
      if (const T* p = piece(c)) return p;
      T* dest = shard_temp_.data() + (2 * depth + side) * stride;
      tree_sum(c, first, stride, n, dest, depth + 1);
      return dest;
    };
    if (const T* whole = piece(node)) {
      std::copy_n(whole, n, out);
      return;
    }
    const Index m = parallel::tree_split(node);
    const T* left = child({node.begin, m}, 0);
    const T* right = child({m, node.end}, 1);
    Eigen::Map<Array>(out, n) =
        Eigen::Map<const Array>(left, n) + Eigen::Map<const Array>(right, n);
  }

  // Every rank's shard of the bucket from the rank that holds it, for the arrays data(slot)
  // (parameter values, gradients or optimizer state): pack, MPI_Allgatherv, unpack.
  template <class Data>
  void share(Bucket& b, const Data& data) {
    for_each_part(b, b.shard_begin, b.shard_end, [&](std::size_t slot, Index j, Index at, Index n) {
      std::copy_n(data(slot) + j, n, b.gathered.data() + at);
    });
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, b.gathered.data(),
                                 b.gather_counts.data(), b.gather_displs.data(),
                                 detail::mpi_type<T>(), comm_),
                  "MPI_Allgatherv");
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      for_each_part(b, b.bound[std::size_t(r)], b.bound[std::size_t(r) + 1],
                    [&](std::size_t slot, Index j, Index at, Index n) {
                      std::copy_n(b.gathered.data() + at, n, data(slot) + j);
                    });
    }
  }

  // Every rank learns every block's loss and the lowest rank whose step failed (-1: none).
  int agree(const std::exception_ptr& error) {
    const parallel::BlockSpan mine = local_.mine();
    my_losses_[0] = error ? double(rank_) : -1.0;
    for (Index b = mine.begin; b < mine.end; ++b) {
      my_losses_[std::size_t(b - mine.begin + 1)] = local_.block_loss(b);
    }
    detail::check(MPI_Allgatherv(my_losses_.data(), int(my_losses_.size()), MPI_DOUBLE, all_.data(),
                                 loss_counts_.data(), loss_displs_.data(), MPI_DOUBLE, control_),
                  "MPI_Allgatherv");
    int failed = -1;
    for (int r = 0; r < size_; ++r) {
      const Index at = loss_displs_[std::size_t(r)];
      if (all_[std::size_t(at)] >= 0 && failed < 0) failed = r;
      const parallel::BlockSpan held = parallel::worker_blocks(options_.blocks, size_, r);
      for (Index b = held.begin; b < held.end; ++b) {
        block_losses_[std::size_t(b)] = all_[std::size_t(at + 1 + (b - held.begin))];
      }
    }
    return failed;
  }

  // Throws on every rank: the failed rank's message, sent to all.
  [[noreturn]] void fail(int failed_rank, const std::exception_ptr& error) {
    std::string message;
    if (rank_ == failed_rank) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
        message = "an exception that is not a std::exception";
      }
    }
    int length = int(message.size());
    detail::check(MPI_Bcast(&length, 1, MPI_INT, failed_rank, control_), "MPI_Bcast");
    message.resize(std::size_t(length));
    detail::check(MPI_Bcast(message.data(), length, MPI_CHAR, failed_rank, control_), "MPI_Bcast");
    throw DistributedError("rank " + std::to_string(failed_rank) + " of " + std::to_string(size_) +
                           " failed in its step: " + message);
  }

  double loss_sum(parallel::BlockSpan node) const {
    if (node.size() == 1) return block_losses_[std::size_t(node.begin)];
    const Index m = parallel::tree_split(node);
    return loss_sum({node.begin, m}) + loss_sum({m, node.end});
  }

  ParameterList<T> params_;
  MPI_Comm comm_;
  int rank_;
  int size_;
  Options options_;
  parallel::DataParallel<T> local_;
  MPI_Comm control_ = MPI_COMM_NULL;
  std::vector<Piece> pieces_;                   // every rank's tree pieces, in block order
  std::vector<parallel::BlockSpan> pieces_of_;  // per rank: its range of pieces_
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;                    // per slot
  std::unique_ptr<std::atomic<Index>[]> slot_done_;       // my blocks finished, per slot
  std::unique_ptr<std::atomic<Index>[]> bucket_pending_;  // slots not yet complete, per bucket
  std::vector<double> block_losses_;
  std::vector<double> my_losses_;  // [failed flag, my blocks' losses]
  std::vector<double> all_;        // every rank's
  std::vector<int> loss_counts_, loss_displs_;
  std::vector<T> shard_temp_;  // two shards per tree depth
  std::vector<T> part_;        // fast: one piece of a bucket
};

}  // namespace gumbel::distributed
