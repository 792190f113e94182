// Data parallelism on the threads of one process: a batch is cut into a fixed number of blocks
// of examples, each block's forward and backward runs on its own tape, and the blocks'
// gradients are summed in a fixed tree order. The result depends on the block count only, so
// it is the same bits with any number of threads.
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

namespace gumbel::parallel {

/// Runs a training step block by block on up to `threads` threads (OpenMP; serially without
/// it, with the same results). Steady steps allocate nothing: tapes and gradient buffers are
/// kept. Memory: each worker holds one gradient copy per tree piece and per tree level it
/// walks (two copies for 2 blocks on 1 thread, one per thread for 2 blocks on 2 threads).
template <class T>
class DataParallel {
 public:
  /// `params`: every parameter the blocks' losses may reach. `blocks`: how many blocks each
  /// batch is cut into; the results depend on it, not on `threads`. At most `blocks` threads
  /// compute blocks at once; all `threads` share the sum and the optimizer's update.
  DataParallel(ParameterList<T> params, Index blocks, int threads = max_threads())
      : params_(std::move(params)), blocks_(blocks), threads_(threads) {
    require_blocks("DataParallel", blocks);
    if (threads < 1 || threads > kMaxThreads) {
      detail::fail<ValueError>("DataParallel", "threads = ", threads, " must lie in [1, ",
                               kMaxThreads, "]");
    }
    optim::detail::require_parameters("DataParallel", params_);
    const Index workers = std::min<Index>(blocks, threads);
    workers_.resize(static_cast<std::size_t>(workers));
    for (Index w = 0; w < workers; ++w) {
      Worker& worker = workers_[std::size_t(w)];
      worker.tape = std::make_unique<Tape<T>>();
      tree_pieces({0, blocks}, worker_blocks(blocks, workers, w), worker.spans);
      for (const BlockSpan& s : worker.spans) {
        worker.pieces.push_back(std::make_unique<GradientBuffers<T>>(params_));
        pieces_.push_back({s, worker.pieces.back().get()});
      }
    }
    block_loss_.assign(static_cast<std::size_t>(blocks), 0.0);
    for (Index n = 1; n < blocks; n *= 2) ++depth_;  // the tree's depth, ceil(log2 blocks)
    temp_.resize(std::size_t(threads));
    for (const Parameter<T>* p : params_) chunks_ += (p->size() + kChunk - 1) / kChunk;
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
  /// block throws, the first error (lowest block) is rethrown and no gradient is changed.
  template <class LossOf>
  double gradients(Index rows, LossOf&& loss_of) {
    run(rows, loss_of, nullptr);
    return batch_loss();
  }

  /// gradients(), then `optimizer`'s update, fused: each chunk of the summed gradient is
  /// used by the optimizer while it is in cache, and all threads share the sum and the update.
  /// The same bits as gradients() followed by optimizer.step(). The optimizer's parameters must
  /// be these parameters (any order).
  template <class LossOf>
  double step(Index rows, LossOf&& loss_of, optim::Optimizer<T>& optimizer) {
    bind(optimizer);
    run(rows, loss_of, &optimizer);
    return batch_loss();
  }

 private:
  struct Worker {
    std::unique_ptr<Tape<T>> tape;
    std::vector<BlockSpan> spans;                              // its tree pieces
    std::vector<std::unique_ptr<GradientBuffers<T>>> pieces;   // their sums
    std::vector<std::unique_ptr<GradientBuffers<T>>> scratch;  // right children, by depth
    std::exception_ptr error;
    Index failed_block = 0;
  };
  struct Piece {
    BlockSpan span;
    GradientBuffers<T>* sum;
  };
  static constexpr Index kChunk = 2048;  // elements summed and updated while in cache

  template <class LossOf>
  void run(Index rows, LossOf& loss_of, optim::Optimizer<T>* optimizer) {
    if (rows < 0) detail::fail<ValueError>("DataParallel", "rows = ", rows, " is negative");
    rows_ = rows;
    bool failed = false;
    // After every block: the optimizer's step begins only when no block failed.
    const auto begin_update = [&] {
      failed = any_error();
      if (!failed && optimizer != nullptr) optimizer->begin_slices();
    };
#ifdef _OPENMP
    if (threads_ > 1 && !omp_in_parallel()) {
      const Index workers = Index(workers_.size());
#pragma omp parallel num_threads(threads_)
      {
        const Index t = omp_get_thread_num();
        const Index size = omp_get_num_threads();
        // With fewer threads than asked for, a thread takes the blocks of several workers.
        for (Index w = t; w < workers; w += size) compute(workers_[std::size_t(w)], loss_of);
#pragma omp barrier
#pragma omp single
        begin_update();
        if (!failed) combine(t, size, optimizer);
      }
    } else
#endif
    {
      for (Worker& w : workers_) compute(w, loss_of);
      begin_update();
      if (!failed) combine(0, 1, optimizer);
    }
    if (failed) rethrow_first();
  }

  template <class LossOf>
  void compute(Worker& w, LossOf& loss_of) {
    w.error = nullptr;
    try {
      for (std::size_t k = 0; k < w.spans.size(); ++k)
        sum_node(w, w.spans[k], *w.pieces[k], 0, loss_of);
    } catch (...) {
      w.error = std::current_exception();
    }
  }

  // dest (zero on entry) += the gradient of the blocks of `node`, in tree order.
  template <class LossOf>
  void sum_node(Worker& w, BlockSpan node, GradientBuffers<T>& dest, int depth, LossOf& loss_of) {
    if (node.size() == 1) {
      run_block(w, node.begin, dest, loss_of);
      return;
    }
    const Index m = tree_split(node);
    sum_node(w, {node.begin, m}, dest, depth + 1, loss_of);
    while (w.scratch.size() <= std::size_t(depth)) {
      w.scratch.push_back(std::make_unique<GradientBuffers<T>>(params_));
    }
    GradientBuffers<T>& right = *w.scratch[std::size_t(depth)];
    sum_node(w, {m, node.end}, right, depth + 1, loss_of);
    for (std::size_t s = 0; s < dest.size(); ++s) {
      dest.grad(s) += right.grad(s);
      right.grad(s).setZero();
    }
  }

  template <class LossOf>
  void run_block(Worker& w, Index block, GradientBuffers<T>& dest, LossOf& loss_of) {
    const BlockSpan r = block_rows(rows_, blocks_, block);
    block_loss_[std::size_t(block)] = 0.0;
    if (r.size() == 0) return;  // fewer rows than blocks: this block adds nothing
    w.failed_block = block;
    Tape<T>& tape = *w.tape;
    tape.clear();
    tape.set_gradient_buffers(&dest);
    try {
      const Var<T> loss = loss_of(tape, block, r.begin, r.end);
      if (!loss.valid() || &loss.tape() != &tape) {
        detail::fail<TapeError>("DataParallel", "block ", block,
                                ": loss_of must return a variable of the tape it was given");
      }
      tape.backward(loss);
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

  // The error of the lowest failed block, after every buffer is zeroed again.
  void rethrow_first() {
    std::exception_ptr first;
    for (Worker& w : workers_) {
      if (w.error && !first) first = w.error;
      w.error = nullptr;
      for (auto& b : w.pieces) b->zero();
      for (auto& b : w.scratch) b->zero();
    }
    std::rethrow_exception(first);
  }

  // Thread t of `size`: its share of the chunks of all parameters: grad = the tree sum of the
  // pieces, the pieces zeroed, then the optimizer's update, a chunk at a time. Chunks start at
  // multiples of kChunk in each parameter, so each element is computed by the same (vector or
  // scalar) code whatever the thread count.
  void combine(Index t, Index size, optim::Optimizer<T>* optimizer) {
    const Index first = chunks_ * t / size;
    const Index last = chunks_ * (t + 1) / size;
    std::vector<T>& temp = temp_[std::size_t(t)];
    temp.resize(std::size_t(kChunk * depth_));  // allocates on the first step only
    Index chunk = 0;  // the number of parameter s's first chunk
    for (std::size_t s = 0; s < params_.size() && chunk < last; ++s) {
      const Index n = params_[s]->size();
      const Index count = (n + kChunk - 1) / kChunk;
      for (Index c = std::max(first, chunk) - chunk; c < count && chunk + c < last; ++c) {
        const Index j = c * kChunk;
        const Index len = std::min(kChunk, n - j);
        T* out = params_[s]->grad.data() + j;
        tree_sum({0, blocks_}, s, j, len, out, 0, temp);
        for (const Piece& p : pieces_) std::fill_n(p.sum->grad(s).data() + j, len, T(0));
        if (optimizer != nullptr) optimizer->update_slice(slot_to_optimizer_[s], j, j + len);
      }
      chunk += count;
    }
  }

  // out[0, len) = elements [j, j + len) of the sum of `node`'s blocks for slot s.
  void tree_sum(BlockSpan node, std::size_t s, Index j, Index len, T* out, Index depth,
                std::vector<T>& temp) const {
    for (const Piece& p : pieces_) {
      if (p.span == node) {
        std::copy_n(p.sum->grad(s).data() + j, len, out);
        return;
      }
    }
    const Index m = tree_split(node);
    tree_sum({node.begin, m}, s, j, len, out, depth + 1, temp);
    T* right = temp.data() + depth * kChunk;
    tree_sum({m, node.end}, s, j, len, right, depth + 1, temp);
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(out, len) +=
        Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(right, len);
  }

  double batch_loss() const {
    return loss_sum({0, blocks_});
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
  Index rows_ = 0;
  Index chunks_ = 0;  // kChunk-element pieces of all parameters
  std::vector<Worker> workers_;
  std::vector<Piece> pieces_;  // every worker's, in block order
  std::vector<double> block_loss_;
  Index depth_ = 0;
  std::vector<std::vector<T>> temp_;  // per thread: a chunk per tree level
  std::vector<std::size_t> slot_to_optimizer_;
  const optim::Optimizer<T>* bound_ = nullptr;
};

}  // namespace gumbel::parallel
