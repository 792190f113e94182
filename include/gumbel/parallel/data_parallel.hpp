// Data parallelism on the threads of one process: a batch is cut into a fixed number of blocks
// of examples, each block's forward and backward runs on its own tape into its own gradient
// buffers, and the blocks' gradients are summed in a fixed tree order (block_tree.hpp). The
// result depends on the block count only, so it is the same bits with any number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "gumbel/core/error.hpp"
#include "gumbel/core/gradient_buffers.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/core/tape.hpp"
#include "gumbel/optim/optimizer.hpp"
#include "gumbel/parallel/block_tree.hpp"
#include "gumbel/parallel/chunk_schedule.hpp"

namespace gumbel::parallel {

/// Runs a training step block by block on up to `threads` threads (OpenMP; serially without
/// it, with the same results). Memory: a gradient copy per block after the first (which uses
/// Parameter::grad), and a tape per thread that computes blocks. Steady steps allocate nothing:
/// tapes and buffers are kept.
template <class T>
class DataParallel {
 public:
  /// `params`: every parameter the blocks' losses may reach. `blocks`: how many blocks each
  /// batch is cut into; the results depend on it, not on `threads`. At most `blocks` threads
  /// compute blocks at once; all `threads` share the sum and the optimizer's update. `mine`:
  /// the blocks this process computes, for a distributed layer (distributed/mpi.hpp) that sums
  /// the rest with other processes; by default all, which gradients() and step() need.
  DataParallel(ParameterList<T> params, Index blocks, int threads = max_threads(),
               BlockSpan mine = {0, -1})
      : params_(std::move(params)), blocks_(blocks), threads_(threads), mine_(mine) {
    require_blocks("DataParallel", blocks);
    if (threads < 1 || threads > kMaxThreads) {
      detail::fail<ValueError>("DataParallel", "threads = ", threads, " must lie in [1, ",
                               kMaxThreads, "]");
    }
    if (mine_.end == -1) mine_ = BlockSpan{0, blocks};
    if (mine_.begin < 0 || mine_.end > blocks || mine_.size() < 1) {
      detail::fail<ValueError>("DataParallel", "blocks [", mine_.begin, ", ", mine_.end,
                               ") are not a non-empty range of the ", blocks, " blocks");
    }
    optim::detail::require_parameters("DataParallel", params_);
    const Index workers = std::min<Index>(mine_.size(), threads);
    workers_.resize(static_cast<std::size_t>(workers));
    for (Index w = 0; w < workers; ++w) {
      const BlockSpan share = worker_blocks(mine_.size(), workers, w);
      workers_[std::size_t(w)].tape = std::make_unique<Tape<T>>();
      workers_[std::size_t(w)].blocks = {mine_.begin + share.begin, mine_.begin + share.end};
      workers_[std::size_t(w)].reached.assign(params_.size(), 0);
    }
    // The first block accumulates in the parameters' own gradients: the sum is written there
    // in place, element by element, after that block's value is read.
    using Storage = typename GradientBuffers<T>::Storage;
    for (Index b = mine_.begin; b < mine_.end; ++b) {
      leaves_.push_back(std::make_unique<GradientBuffers<T>>(
          params_, b == mine_.begin ? Storage::parameters : Storage::own));
    }
    block_loss_.assign(static_cast<std::size_t>(blocks), 0.0);
    for (Index n = 1; n < blocks; n *= 2) ++depth_;  // the tree's depth, ceil(log2 blocks)
    temp_.resize(std::size_t(threads));
    std::vector<Index> sizes;
    for (const Parameter<T>* p : params_) sizes.push_back(p->size());
    schedule_.configure(sizes, kChunk, threads, mine_.size());
  }

  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  Index blocks() const { return blocks_; }
  int threads() const { return threads_; }
  const ParameterList<T>& parameters() const { return params_; }

  /// The gradient of a batch of `rows` examples, block by block. `loss_of(tape, block, begin,
  /// end)` records on `tape` the loss of rows [begin, end) as its share of the batch's loss
  /// (the blocks' losses must add up to the batch's: divide by the batch's size, not the
  /// block's) and returns it (1x1); it is called from worker threads, for each non-empty
  /// block once, and must not touch state shared with other blocks (draw noise from a
  /// generator of the block's own, see Generator::subsequence). Every parameter's `grad` is
  /// set (not added) to the sum of the blocks' gradients in the tree order of block_tree.hpp.
  /// Returns the batch's loss: the blocks' losses summed in double in the same order. When a
  /// block throws, the error of the lowest failing block is rethrown; the gradients are then
  /// undefined (step() has changed no parameter and no optimizer state).
  template <class LossOf>
  double gradients(Index rows, LossOf&& loss_of) {
    require_all("DataParallel::gradients");
    run(rows, loss_of, nullptr);
    return loss_sum({0, blocks_});
  }

  /// gradients(), then `optimizer`'s update, fused: each chunk of the summed gradient is
  /// used by the optimizer while it is in cache, and all threads share the sum and the update.
  /// The same bits as gradients() followed by optimizer.step(). The optimizer's parameters must
  /// be these parameters (in any order).
  template <class LossOf>
  double step(Index rows, LossOf&& loss_of, optim::Optimizer<T>& optimizer) {
    require_all("DataParallel::step");
    bind(optimizer);
    run(rows, loss_of, &optimizer);
    return loss_sum({0, blocks_});
  }

 private:
  struct Worker {
    std::unique_ptr<Tape<T>> tape;
    BlockSpan blocks;  // the blocks it computes
    std::exception_ptr error;
    std::vector<char> reached;  // per slot, during a block's backward
  };
  static constexpr Index kChunk = 2048;  // elements summed and updated while in cache

 public:
  // ---- For distributed layers: this process's blocks, their sums, the update ---------------

  /// The blocks this process computes.
  BlockSpan mine() const { return mine_; }

  /// Computes this process's blocks on the threads, as gradients() does, without summing them:
  /// each block's gradient stays in its buffers, for node_sum. `ready(block, slot)` is called
  /// from the computing thread as soon as that block's gradient of parameters()[slot] is
  /// complete. Returns the exception of the lowest failing block, or null.
  template <class LossOf, class Ready>
  std::exception_ptr compute(Index rows, LossOf&& loss_of, Ready&& ready) {
    set_rows(rows);
#ifdef _OPENMP
    if (threads_ > 1 && workers_.size() > 1 && !omp_in_parallel()) {
      const Index workers = Index(workers_.size());
#pragma omp parallel num_threads(int(std::min <Index>(threads_, workers)))
      {
        const Index size = omp_get_num_threads();
        for (Index w = omp_get_thread_num(); w < workers; w += size) {
          compute_worker(workers_[std::size_t(w)], loss_of, ready);
        }
      }
    } else
#endif
    {
      for (Worker& w : workers_) compute_worker(w, loss_of, ready);
    }
    std::exception_ptr first;
    for (Worker& w : workers_) {
      if (w.error && !first) first = w.error;
      w.error = nullptr;
    }
    return first;
  }

  /// Block b's loss from the last compute(); b must be one of mine().
  double block_loss(Index b) const {
    return block_loss_[std::size_t(b)];
  }

  /// Block b's gradient of parameters()[slot] as the last compute() left it; b must be one of
  /// mine() (block 0's is the parameter's own `grad`).
  const T* block_gradient(Index b, std::size_t slot) const {
    return leaves_[std::size_t(b - mine_.begin)]->grad(slot).data();
  }

  /// out[0, len) = elements [j, j + len) of parameters()[slot]'s gradient summed over the tree
  /// node `node` in tree order; every block of `node` must be one of mine(). `temp` holds
  /// 2 kChunk depth values (scratch()).
  void node_sum(BlockSpan node, std::size_t slot, Index j, Index len, T* out,
                std::vector<T>& temp) const {
    for (Index at = 0; at < len; at += kChunk) {
      tree_sum(node, slot, j + at, std::min(kChunk, len - at), out + at, 0, temp);
    }
  }

  /// Scratch for node_sum, per thread.
  std::vector<T>& scratch(int thread = 0) {
    std::vector<T>& temp = temp_[std::size_t(thread)];
    temp.resize(std::size_t(2 * kChunk * depth_));
    return temp;
  }

  /// The optimizer's update from the parameters' `grad` (the sum, written by the caller), all
  /// threads sharing it a chunk at a time: the same bits as optimizer.step().
  void update(optim::Optimizer<T>& optimizer) {
    bind(optimizer);
    optimizer.begin_slices();
    schedule_.reset(0);
    schedule_.seal();
#ifdef _OPENMP
    if (threads_ > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads_)
      combine(omp_get_thread_num(), &optimizer, false);
      return;
    }
#endif
    combine(0, &optimizer, false);
  }

  /// Checks that `optimizer` holds exactly these parameters and maps each slot to its index
  /// there (optimizer_index).
  void bind_optimizer(const optim::Optimizer<T>& optimizer) {
    bind(optimizer);
  }
  std::size_t optimizer_index(std::size_t slot) const {
    return slot_to_optimizer_[slot];
  }

 private:
  template <class LossOf>
  void run(Index rows, LossOf& loss_of, optim::Optimizer<T>* optimizer) {
    set_rows(rows);
    const Index workers = Index(workers_.size());
    schedule_.reset(workers);
    auto ready = [this](Index, std::size_t slot) { schedule_.ready(slot); };
    // Thread t of `size`: its workers' blocks, each worker's end reported to the schedule.
    const auto compute_share = [&](Index t, Index size) {
      for (Index w = t; w < workers; w += size) {
        Worker& worker = workers_[std::size_t(w)];
        compute_worker(worker, loss_of, ready);
        schedule_.worker_done();
      }
    };
    bool failed = false;
    // After every block: the optimizer's step begins only when no block failed.
    const auto begin_update = [&] {
      failed = any_error();
      schedule_.seal();
      if (!failed && optimizer != nullptr) optimizer->begin_slices();
    };
#ifdef _OPENMP
    if (threads_ > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads_)
      {
        const int t = omp_get_thread_num();
        // With fewer threads than asked for, a thread takes the blocks of several workers.
        compute_share(t, omp_get_num_threads());
        sum_early(t);
#pragma omp barrier
#pragma omp single
        begin_update();
        if (!failed) combine(t, optimizer);
      }
    } else
#endif
    {
      compute_share(0, 1);
      begin_update();
      if (!failed) combine(0, optimizer);
    }
    if (failed) rethrow_first();
  }

  template <class LossOf>
  void compute_worker(Worker& w, LossOf& loss_of) {
    auto none = [](Index, std::size_t) {};
    compute_worker(w, loss_of, none);
  }

  template <class LossOf, class Ready>
  void compute_worker(Worker& w, LossOf& loss_of, Ready& ready) {
    w.error = nullptr;
    try {
      for (Index b = w.blocks.begin; b < w.blocks.end; ++b) run_block(w, b, loss_of, ready);
    } catch (...) {
      w.error = std::current_exception();
    }
  }

  // Block `block`'s loss and its gradient, written into its buffers.
  template <class LossOf, class Ready>
  void run_block(Worker& w, Index block, LossOf& loss_of, Ready& ready) {
    const BlockSpan r = block_rows(rows_, blocks_, block);
    GradientBuffers<T>& leaf = *leaves_[std::size_t(block - mine_.begin)];
    block_loss_[std::size_t(block)] = 0.0;
    if (r.size() == 0) {  // fewer rows than blocks: this block adds nothing
      leaf.zero();
      for (std::size_t s = 0; s < params_.size(); ++s) ready(block, s);
      return;
    }
    // The backward assigns each gradient it reaches (no pass of zeroing first) and zeroes the
    // rest of those on the tape; zero_stale() below zeroes the parameters the loss left out.
    leaf.zero_lazily();
    Tape<T>& tape = *w.tape;
    tape.clear();
    tape.set_gradient_buffers(&leaf);
    try {
      const Var<T> loss = loss_of(tape, block, r.begin, r.end);
      if (!loss.valid() || &loss.tape() != &tape) {
        detail::fail<TapeError>("DataParallel", "block ", block,
                                ": loss_of must return a variable of the tape it was given");
      }
      // A parameter the loss does not reach is ready (zero) from the start.
      std::fill(w.reached.begin(), w.reached.end(), char{0});
      tape.backward(loss, [&](Parameter<T>& p) {
        const std::size_t s = leaf.slot_of(p);
        if (w.reached[s]) return;
        w.reached[s] = 1;
        ready(block, s);
      });
      leaf.zero_stale();
      for (std::size_t s = 0; s < params_.size(); ++s) {
        if (!w.reached[s]) ready(block, s);
      }
      block_loss_[std::size_t(block)] = double(loss.item());
    } catch (...) {
      tape.set_gradient_buffers(nullptr);
      throw;
    }
    tape.set_gradient_buffers(nullptr);
  }

  bool any_error() const {
    for (const Worker& w : workers_) {
      if (w.error) return true;
    }
    return false;
  }

  void set_rows(Index rows) {
    if (rows < 0) detail::fail<ValueError>("DataParallel", "rows = ", rows, " is negative");
    rows_ = rows;
  }

  // The error of the lowest failed block (workers hold blocks in order).
  void rethrow_first() {
    std::exception_ptr first;
    for (Worker& w : workers_) {
      if (w.error && !first) first = w.error;
      w.error = nullptr;
    }
    std::rethrow_exception(first);
  }

  // Thread t, while blocks are still computing: grad = the tree sum of the blocks' gradients
  // for the chunks the schedule hands out as their parameters complete.
  void sum_early(int t) {
    std::vector<T>& temp = scratch(t);
    ChunkSchedule::Chunk c;
    while (schedule_.next_early(t, c)) sum_chunk(c, temp);
  }

  // Thread t, after every block: the chunks the schedule hands out, each summed (with `sum`,
  // unless it was early; without, p.grad already holds the sum) and then given the optimizer's
  // update. Chunks start at multiples of kChunk in each parameter, so each element is computed
  // by the same (vector or scalar) code whatever the thread.
  void combine(int t, optim::Optimizer<T>* optimizer, bool sum = true) {
    std::vector<T>& temp = scratch(t);
    int victim = 0;
    ChunkSchedule::Chunk c;
    while (schedule_.next(t, victim, c)) {
      if (sum && !c.summed) sum_chunk(c, temp);
      if (optimizer != nullptr) {
        optimizer->update_slice(slot_to_optimizer_[c.slot], c.begin, c.begin + c.size);
      }
    }
  }

  void sum_chunk(const ChunkSchedule::Chunk& c, std::vector<T>& temp) const {
    tree_sum({0, blocks_}, c.slot, c.begin, c.size, params_[c.slot]->grad.data() + c.begin, 0,
             temp);
  }

  // out[0, len) = elements [j, j + len) of slot s's gradient summed over `node`'s blocks. A
  // child that is one block is read in place; a larger one is summed into temp, a chunk per
  // (depth, side), so that the two children of a node never share one.
  void tree_sum(BlockSpan node, std::size_t s, Index j, Index len, T* out, Index depth,
                std::vector<T>& temp) const {
    using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
    if (node.size() == 1) {  // one block: block 0, already in place
      const T* leaf = leaves_[std::size_t(node.begin - mine_.begin)]->grad(s).data() + j;
      if (leaf != out) std::copy_n(leaf, len, out);
      return;
    }
    const auto child = [&](BlockSpan c, Index side) -> const T* {
      if (c.size() == 1) return leaves_[std::size_t(c.begin - mine_.begin)]->grad(s).data() + j;
      T* dest = temp.data() + (2 * depth + side) * kChunk;
      tree_sum(c, s, j, len, dest, depth + 1, temp);
      return dest;
    };
    const Index m = tree_split(node);
    const T* left = child({node.begin, m}, 0);
    const T* right = child({m, node.end}, 1);
    Eigen::Map<Array>(out, len) =
        Eigen::Map<const Array>(left, len) + Eigen::Map<const Array>(right, len);
  }

  void require_all(const char* op) const {
    if (mine_.begin != 0 || mine_.end != blocks_) {
      detail::fail<ValueError>(op, "needs every block on this process, it has [", mine_.begin, ", ",
                               mine_.end, ") of ", blocks_);
    }
  }

  double loss_sum(BlockSpan node) const {
    if (node.size() == 1) return block_loss_[std::size_t(node.begin)];
    const Index m = tree_split(node);
    return loss_sum({node.begin, m}) + loss_sum({m, node.end});
  }

  // Maps each slot to the optimizer's index of the same parameter.
  void bind(const optim::Optimizer<T>& optimizer) {
    if (bound_ == &optimizer) return;
    const ParameterList<T>& theirs = optimizer.parameters();
    if (theirs.size() != params_.size()) {
      detail::fail<ValueError>("DataParallel::step", "the optimizer has ", theirs.size(),
                               " parameters, the data-parallel step ", params_.size());
    }
    slot_to_optimizer_.assign(params_.size(), 0);
    for (std::size_t s = 0; s < params_.size(); ++s) {
      const auto it = std::find(theirs.begin(), theirs.end(), params_[s]);
      if (it == theirs.end()) {
        detail::fail<ValueError>("DataParallel::step", "parameter '", params_[s]->name,
                                 "' is not among the optimizer's parameters");
      }
      slot_to_optimizer_[s] = std::size_t(it - theirs.begin());
    }
    bound_ = &optimizer;
  }

  ParameterList<T> params_;
  Index blocks_;
  int threads_;
  BlockSpan mine_;
  Index rows_ = 0;
  Index depth_ = 0;  // of the summation tree
  std::vector<Worker> workers_;
  std::vector<std::unique_ptr<GradientBuffers<T>>> leaves_;  // per block
  std::vector<double> block_loss_;
  std::vector<std::vector<T>> temp_;  // per thread: two chunks per tree level
  std::vector<std::size_t> slot_to_optimizer_;
  const optim::Optimizer<T>* bound_ = nullptr;
  ChunkSchedule schedule_;  // who sums and updates which chunk
};

}  // namespace gumbel::parallel
