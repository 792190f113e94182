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
#include "gumbel/distributed/mpi_buckets.hpp"
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
               parallel::worker_blocks(options.blocks, Index(size_), Index(rank_))),
        buckets_(params_, options_.blocks, rank_, size_, options_.bucket_bytes,
                 options_.reduction) {
    // Step results and failures travel on a communicator of their own, so that they never
    // interleave with the buckets' exchanges.
    detail::check(MPI_Comm_dup(comm, &control_), "MPI_Comm_dup");
    detail::check(MPI_Comm_dup(comm, &data_), "MPI_Comm_dup");
    for (int r = 0; r < size_; ++r) {
      const parallel::BlockSpan held = parallel::worker_blocks(options_.blocks, size_, r);
      loss_displs_.push_back(r == 0 ? 0 : loss_displs_.back() + loss_counts_.back());
      loss_counts_.push_back(int(held.size() + 1));
    }
    my_losses_.resize(std::size_t(local_.mine().size() + 1));
    all_.resize(std::size_t(loss_displs_.back() + loss_counts_.back()));
    block_losses_.resize(std::size_t(options_.blocks));
    Index depth = 0;
    for (Index n = 1; n < options_.blocks; n *= 2) ++depth;
    shard_temp_.resize(std::size_t(2 * depth * buckets_.longest_shard()));
    if (options_.reduction == Reduction::fast && local_.mine().size() > 1) {
      part_.resize(std::size_t(buckets_.largest()));
    }
    slot_done_ = std::make_unique<std::atomic<Index>[]>(params_.size());
    bucket_pending_ = std::make_unique<std::atomic<Index>[]>(buckets_.size());
    broadcast_parameters(params_, comm_, 0);
  }

  ~DataParallel() {
    MPI_Comm_free(&data_);
    MPI_Comm_free(&control_);
  }
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
        post_shards(b, [&](std::size_t slot) {
          return (*state.values)[local_.optimizer_index(slot)].data();
        });
        wait_all(b.shared);
      }
    }
  }

 private:
  using Bucket = detail::Bucket<T>;
  static constexpr int kPieceTag = 0;  // messages between two ranks match in posting order
  static constexpr int kShardTag = 1;

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

  // Where my piece p of the part (slot, j, at) lies: a piece of one block is that block's
  // gradient as backward left it; a larger one was summed into the bucket's `sums` by post().
  const T* my_piece(const Bucket& b, Index p, std::size_t slot, Index j, Index at) const {
    const parallel::BlockSpan span = buckets_.piece(p).span;
    if (span.size() == 1) return local_.block_gradient(span.begin, slot) + j;
    return b.sums.data() + (p - buckets_.pieces_of(rank_).begin) * b.elements + at;
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
        bucket_pending_[buckets_.of(slot)].fetch_sub(1);
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
      return loss_sum({0, options_.blocks});
    }
    // Each bucket's shards travel while the next bucket is updated.
    if (optimizer != nullptr) optimizer->begin_slices();
    for (Bucket& b : buckets_) {
      if (optimizer != nullptr) {
        buckets_.for_each_part(b, b.shard_begin, b.shard_end,
                               [&](std::size_t slot, Index j, Index, Index len) {
                                 optimizer->update_slice(local_.optimizer_index(slot), j, j + len);
                               });
        post_shards(b, [&](std::size_t slot) { return params_[slot]->value.data(); });
      } else {
        post_shards(b, [&](std::size_t slot) { return params_[slot]->grad.data(); });
      }
      int done = 0;  // lets MPI progress the messages posted so far
      detail::check(MPI_Testall(int(b.shared.size()), b.shared.data(), &done, MPI_STATUSES_IGNORE),
                    "MPI_Testall");
    }
    for (Bucket& b : buckets_) wait_all(b.shared);
    return loss_sum({0, options_.blocks});
  }

  static bool on_caller_thread() {
#ifdef _OPENMP
    return omp_get_thread_num() == 0;
#else
    return true;
#endif
  }

  static void wait_all(std::vector<MPI_Request>& requests) {
    detail::check(MPI_Waitall(int(requests.size()), requests.data(), MPI_STATUSES_IGNORE),
                  "MPI_Waitall");
  }

  // Posts each bucket's exchange once backward has finished its parameters, and sums the
  // shards of those that have arrived; with `wait`, all of them. Buckets are posted in one
  // order on every rank (MPI matches collectives, and messages between two ranks, by order).
  void advance(bool wait) {
    for (std::size_t k = 0; k < buckets_.size(); ++k) {
      Bucket& b = buckets_[k];
      if (b.stage == 0) {
        if (bucket_pending_[k] > 0) return;  // backward has not finished its parameters
        post(b);
      }
      if (b.stage == 1) {
        const bool fast = options_.reduction == Reduction::fast;
        int done = 0;
        if (wait) {
          if (fast) {
            detail::check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "MPI_Wait");
          } else {
            wait_all(b.exchange);
          }
          done = 1;
        } else if (fast) {
          detail::check(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        } else {
          detail::check(
              MPI_Testall(int(b.exchange.size()), b.exchange.data(), &done, MPI_STATUSES_IGNORE),
              "MPI_Testall");
        }
        if (!done) continue;
        if (fast) {
          buckets_.for_each_part(
              b, 0, b.elements, [&](std::size_t slot, Index j, Index at, Index len) {
                std::copy_n(b.gathered.data() + at, len, params_[slot]->grad.data() + j);
              });
        } else {
          sum_shard(b);
        }
        b.stage = 2;
      }
    }
  }

  // This rank's part of a bucket and the exchange that starts with it. Exact: each of its tree
  // pieces of every other rank's shard, sent from where it lies (a one-block piece straight
  // from backward's gradient), and the other ranks' pieces of its own shard received. Fast:
  // the sum of its pieces, all-reduced (MPI_Iallreduce).
  void post(Bucket& b) {
    std::vector<T>& temp = local_.scratch();
    const parallel::BlockSpan mine = buckets_.pieces_of(rank_);
    if (options_.reduction == Reduction::fast) {
      buckets_.for_each_part(b, 0, b.elements, [&](std::size_t slot, Index j, Index at, Index len) {
        T* out = b.gathered.data() + at;
        local_.node_sum(buckets_.piece(mine.begin).span, slot, j, len, out, temp);
        for (Index p = mine.begin + 1; p < mine.end; ++p) {
          T* part = part_.data();
          local_.node_sum(buckets_.piece(p).span, slot, j, len, part, temp);
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
    for (Index p = mine.begin; p < mine.end; ++p) {
      const parallel::BlockSpan span = buckets_.piece(p).span;
      if (span.size() == 1) continue;
      T* sums = b.sums.data() + (p - mine.begin) * b.elements;
      buckets_.for_each_part(b, 0, b.elements, [&](std::size_t slot, Index j, Index at, Index n) {
        local_.node_sum(span, slot, j, n, sums + at, temp);
      });
    }
    const Index own = b.shard_end - b.shard_begin;
    std::size_t m = 0;
    buckets_.exchange_messages(b, [&](bool send, int peer, Index p, std::size_t slot, Index j,
                                      Index at, Index n) {
      MPI_Request* request = &b.exchange[m++];
      if (send) {
        detail::check(MPI_Isend(my_piece(b, p, slot, j, at), detail::count(n),
                                detail::mpi_type<T>(), peer, kPieceTag, data_, request),
                      "MPI_Isend");
      } else {
        detail::check(MPI_Irecv(b.receive.data() + p * own + (at - b.shard_begin), detail::count(n),
                                detail::mpi_type<T>(), peer, kPieceTag, data_, request),
                      "MPI_Irecv");
      }
    });
    b.stage = 1;
  }

  // This rank's shard of the bucket summed over every rank's pieces in tree order, straight
  // into the parameters' gradients, slot part by slot part.
  void sum_shard(const Bucket& b) {
    const Index own = b.shard_end - b.shard_begin;
    buckets_.for_each_part(
        b, b.shard_begin, b.shard_end, [&](std::size_t slot, Index j, Index at, Index n) {
          const auto piece = [&](Index k) -> const T* {
            if (buckets_.piece(k).owner == rank_) return my_piece(b, k, slot, j, at);
            return b.receive.data() + k * own + (at - b.shard_begin);
          };
          tree_sum({0, options_.blocks}, piece, n, params_[slot]->grad.data() + j, 0);
        });
  }

  // out[0, n) = the sum of `node`: a piece read where piece(k) says, anything else summed from
  // its children (in shard_temp_ at its depth and side). out may be a piece itself (block 0's
  // gradient is the parameter's): every element is read before it is written.
  template <class Where>
  void tree_sum(parallel::BlockSpan node, const Where& piece, Index n, T* out, Index depth) {
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    const auto child = [&](parallel::BlockSpan c, Index side) -> const T* {
      if (const Index k = buckets_.find(c); k >= 0) return piece(k);
      T* dest = shard_temp_.data() + (2 * depth + side) * n;
      tree_sum(c, piece, n, dest, depth + 1);
      return dest;
    };
    if (const Index k = buckets_.find(node); k >= 0) {
      const T* whole = piece(k);
      if (whole != out) std::copy_n(whole, n, out);
      return;
    }
    const Index m = parallel::tree_split(node);
    const T* left = child({node.begin, m}, 0);
    const T* right = child({m, node.end}, 1);
    Eigen::Map<Array>(out, n) =
        Eigen::Map<const Array>(left, n) + Eigen::Map<const Array>(right, n);
  }

  // Starts sending this rank's shard of the bucket in the arrays data(slot) (parameter
  // values, gradients or optimizer state) to every other rank, and receiving theirs in place;
  // b.shared completes it.
  template <class Data>
  void post_shards(Bucket& b, const Data& data) {
    std::size_t m = 0;
    buckets_.shard_messages(b, [&](bool send, int peer, std::size_t slot, Index j, Index n) {
      MPI_Request* request = &b.shared[m++];
      if (send) {
        detail::check(MPI_Isend(data(slot) + j, detail::count(n), detail::mpi_type<T>(), peer,
                                kShardTag, data_, request),
                      "MPI_Isend");
      } else {
        detail::check(MPI_Irecv(data(slot) + j, detail::count(n), detail::mpi_type<T>(), peer,
                                kShardTag, data_, request),
                      "MPI_Irecv");
      }
    });
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
  detail::Buckets<T> buckets_;
  MPI_Comm control_ = MPI_COMM_NULL;  // losses and failures
  MPI_Comm data_ = MPI_COMM_NULL;     // pieces and shards (messages between two ranks)
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
