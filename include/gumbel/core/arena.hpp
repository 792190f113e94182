// A bump allocator for one tape's values, gradients and backward closures.
//
// Everything a tape records lives here, so clearing a tape is O(1) and a training step that
// records the same graph again allocates nothing: reset() merges all blocks into one block as
// large as the last pass needed, and from then on every allocation is a pointer bump.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace gumbel {

class Arena {
 public:
  /// Alignment of every allocation: a cache line, enough for any SIMD width.
  static constexpr std::size_t alignment = 64;

  explicit Arena(std::size_t first_block_bytes = std::size_t{1} << 16)
      : first_block_bytes_(round_up(first_block_bytes == 0 ? alignment : first_block_bytes)) {}

  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&&) noexcept = default;
  Arena& operator=(Arena&&) noexcept = default;

  /// Uninitialised, 64-byte aligned memory valid until the next reset(). A request larger than
  /// memory can address throws std::bad_array_new_length (a std::bad_alloc), as does `new`.
  void* allocate(std::size_t bytes) {
    if (bytes > kMaxBytes) throw std::bad_array_new_length();
    bytes = round_up(bytes == 0 ? 1 : bytes);
    while (current_ < blocks_.size()) {
      Block& block = blocks_[current_];
      if (block.size - offset_ >= bytes) {
        void* p = block.data.get() + offset_;
        offset_ += bytes;
        used_ += bytes;
        return p;
      }
      ++current_;
      offset_ = 0;
    }
    const std::size_t last = blocks_.empty() ? first_block_bytes_ : blocks_.back().size;
    blocks_.push_back(Block::make(bytes > 2 * last ? bytes : 2 * last));
    current_ = blocks_.size() - 1;
    offset_ = bytes;
    used_ += bytes;
    return blocks_.back().data.get();
  }

  /// Typed array of n elements (uninitialised).
  template <class T>
  T* allocate_array(std::size_t n) {
    static_assert(alignof(T) <= alignment, "over-aligned type in arena");
    if (n > kMaxBytes / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate(n * sizeof(T)));
  }

  /// Forgets every allocation. When the last pass spilled into several blocks they are merged
  /// into one of the total size, so the same pass never needs the system allocator again.
  void reset() {
    if (blocks_.size() > 1) {
      std::size_t total = 0;
      for (const Block& b : blocks_) total += b.size;
      blocks_.clear();
      blocks_.push_back(Block::make(total));
    }
    current_ = 0;
    offset_ = 0;
    used_ = 0;
  }

  /// Bytes handed out since the last reset().
  std::size_t used() const { return used_; }

  /// Bytes held from the system.
  std::size_t capacity() const {
    std::size_t total = 0;
    for (const Block& b : blocks_) total += b.size;
    return total;
  }

 private:
  // Blocks of a few MB (large batches, wide rows) sit on 2 MB pages where the kernel allows it:
  // with 4 KB pages a pass over several such matrices misses the TLB at every page, which cost
  // about half the time of a sample + backward at 64 x 32000.
  static constexpr std::size_t huge_page = std::size_t{1} << 21;
  // No block may exceed what a pointer difference can span; rounding up and doubling a block
  // below this bound cannot wrap.
  static constexpr std::size_t kMaxBytes =
      static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()) / 4;

  struct AlignedDelete {
    std::size_t align = alignment;
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{align}); }
  };
  struct Block {
    std::unique_ptr<std::byte[], AlignedDelete> data;
    std::size_t size = 0;
    static Block make(std::size_t bytes) {
      const std::size_t align = bytes >= huge_page ? huge_page : alignment;
      auto* p = static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{align}));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      // Advice only: where transparent huge pages are off, the block keeps small pages.
      if (align == huge_page) static_cast<void>(::madvise(p, bytes, MADV_HUGEPAGE));
#endif
      return Block{std::unique_ptr<std::byte[], AlignedDelete>(p, AlignedDelete{align}), bytes};
    }
  };
  static constexpr std::size_t round_up(std::size_t bytes) {
    return (bytes + alignment - 1) / alignment * alignment;
  }

  std::vector<Block> blocks_;
  std::size_t first_block_bytes_;
  std::size_t current_ = 0;  // block being filled
  std::size_t offset_ = 0;   // bytes used in that block
  std::size_t used_ = 0;
};

}  // namespace gumbel
