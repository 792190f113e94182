// Which thread sums and updates which chunk of the parameters in a data-parallel step. The
// chunks, numbered through the parameters in order, are cut into one contiguous range per
// thread, and each thread takes the chunks of its own range from the front, one at a time, so
// that from step to step it keeps the same chunks and their optimizer state in its cache:
// - while other threads still compute blocks, a thread whose blocks are done sums chunks whose
//   parameter every block has completed: from the front of its own range, else from the back
//   of another's;
// - after the blocks, each thread sums the rest of its range and applies the update, and a
//   thread whose range is done takes chunks from the back of the others'.
// A thread on a slower core thus holds the step up by less than its fixed share would, and which
// thread handles a chunk never changes what is computed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "gumbel/core/types.hpp"

namespace gumbel::parallel {

class ChunkSchedule {
 public:
  /// Elements [begin, begin + size) of parameter `slot`; `summed`: while blocks computed.
  struct Chunk {
    std::size_t slot = 0;
    Index begin = 0;
    Index size = 0;
    bool summed = false;
  };

  /// `sizes`: each parameter's element count; `chunk`: elements per chunk; `threads`: the
  /// most threads that share the chunks; `blocks`: how many ready() calls complete a parameter.
  void configure(const std::vector<Index>& sizes, Index chunk, int threads, Index blocks) {
    chunk_ = chunk;
    blocks_ = blocks;
    sizes_ = sizes;
    starts_.assign(1, 0);
    for (const Index n : sizes_) starts_.push_back(starts_.back() + (n + chunk - 1) / chunk);
    ready_.reset(new std::atomic<Index>[sizes_.size()]);
    parts_ = threads;
    ranges_.reset(new Range[std::size_t(threads)]);
    for (int r = 0; r < parts_; ++r) {
      Range& range = ranges_[std::size_t(r)];
      range.first = count() * r / parts_;
      range.size = count() * (r + 1) / parts_ - range.first;
    }
  }

  /// Chunks of all parameters.
  Index count() const { return starts_.back(); }

  /// Before a step whose blocks `workers` workers compute. (A thread the runtime does not
  /// start leaves its range to the others.)
  void reset(Index workers) {
    for (std::size_t s = 0; s < sizes_.size(); ++s) ready_[s].store(0, std::memory_order_relaxed);
    for (int r = 0; r < parts_; ++r) {
      ranges_[std::size_t(r)].early.store(0, std::memory_order_relaxed);
      ranges_[std::size_t(r)].taken.store(0, std::memory_order_relaxed);
    }
    computing_.value.store(workers, std::memory_order_relaxed);
  }

  /// One block's gradient of `slot` is complete (called from the thread that wrote it).
  void ready(std::size_t slot) { ready_[slot].fetch_add(1, std::memory_order_acq_rel); }

  /// A worker has computed its blocks (or thrown).
  void worker_done() { computing_.value.fetch_sub(1, std::memory_order_acq_rel); }

  /// While some worker still computes: a chunk for thread `thread` to sum, whose parameter every
  /// block has completed (waiting for one if need be); false once every worker is done.
  bool next_early(int thread, Chunk& out) {
    for (int spins = 0; computing_.value.load(std::memory_order_acquire) > 0;) {
      for (int victim = 0; victim < parts_; ++victim) {
        if (take_early(ranges_[std::size_t((thread + victim) % parts_)], victim == 0, out)) {
          return true;
        }
      }
      if (++spins % 64 == 0) std::this_thread::yield();
    }
    return false;
  }

  /// After every block, on one thread before next(): notes the chunks summed early.
  void seal() {
    for (int r = 0; r < parts_; ++r) {
      Range& range = ranges_[std::size_t(r)];
      const std::uint64_t early = range.early.load(std::memory_order_relaxed);
      range.summed_front = Index(early & kFrontMask);
      range.summed_back = Index(early >> 32);
    }
  }

  /// After every block: thread `thread`'s next chunk, or false when every chunk is taken.
  /// `victim` is the thread's own state between calls: start it at 0.
  bool next(int thread, int& victim, Chunk& out) {
    for (; victim < parts_; ++victim) {
      Range& range = ranges_[std::size_t((thread + victim) % parts_)];
      const bool own = victim == 0;
      const std::uint64_t before =
          range.taken.fetch_add(own ? 1 : kBackOne, std::memory_order_relaxed);
      const Index front = Index(before & kFrontMask);
      const Index back = Index(before >> 32);
      if (front + back < range.size) {
        const Index at = own ? front : range.size - 1 - back;
        out = chunk(range.first + at,
                    at < range.summed_front || at >= range.size - range.summed_back);
        return true;
      }
    }
    return false;
  }

 private:
  static constexpr std::uint64_t kBackOne = std::uint64_t{1} << 32;
  static constexpr std::uint64_t kFrontMask = kBackOne - 1;

  struct alignas(64) Range {  // a cache line each: the owner and thieves update `taken` at once
    Index first = 0;
    Index size = 0;
    Index summed_front = 0;               // chunks summed while blocks computed, from the front
    Index summed_back = 0;                // and from the back
    std::atomic<std::uint64_t> early{0};  // the same while they compute (low half: the front)
    std::atomic<std::uint64_t> taken{0};  // chunks taken after the blocks, front (low) and back
  };

  // Takes the next chunk of `range` to sum early, from the front (`own`) or the back, if every
  // block has completed its parameter.
  bool take_early(Range& range, bool own, Chunk& out) {
    std::uint64_t early = range.early.load(std::memory_order_relaxed);
    for (;;) {
      const Index front = Index(early & kFrontMask);
      const Index back = Index(early >> 32);
      if (front + back >= range.size) return false;
      const Index at = own ? front : range.size - 1 - back;
      out = chunk(range.first + at, false);
      if (ready_[out.slot].load(std::memory_order_acquire) < blocks_) return false;
      if (range.early.compare_exchange_weak(early, early + (own ? 1 : kBackOne),
                                            std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  Chunk chunk(Index k, bool summed) const {
    const auto slot =
        std::size_t(std::upper_bound(starts_.begin(), starts_.end(), k) - starts_.begin() - 1);
    Chunk c;
    c.slot = slot;
    c.begin = (k - starts_[slot]) * chunk_;
    c.size = std::min(chunk_, sizes_[slot] - c.begin);
    c.summed = summed;
    return c;
  }

  struct alignas(64) Count {
    std::atomic<Index> value{0};
  };

  Index chunk_ = 1;
  Index blocks_ = 1;
  std::vector<Index> sizes_;
  std::vector<Index> starts_{0};                 // the first chunk of each parameter, then count()
  std::unique_ptr<std::atomic<Index>[]> ready_;  // per parameter: blocks that completed it
  std::unique_ptr<Range[]> ranges_;              // per thread
  int parts_ = 0;
  Count computing_;  // workers still computing
};

}  // namespace gumbel::parallel
