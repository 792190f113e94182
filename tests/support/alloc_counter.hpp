// Counts heap allocations of the whole binary by interposing glibc's malloc family, so that
// allocations made by Eigen (malloc) and by operator new (which calls malloc) are both seen.
// Include in exactly one translation unit of a binary that is not built with sanitizers.
// (posix_memalign is left alone: clang's mm_malloc.h redeclares it with another exception
// specification; Eigen and libstdc++ allocate through malloc and aligned_alloc.)
#pragma once

#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
}

namespace alloc_counter {
inline std::atomic<long> g_count{0};
/// Allocations since the program started.
inline long count() {
  return g_count.load(std::memory_order_relaxed);
}
inline void note() {
  g_count.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace alloc_counter

extern "C" {
void* malloc(std::size_t size) noexcept {
  alloc_counter::note();
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  alloc_counter::note();
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  alloc_counter::note();
  return __libc_realloc(p, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  alloc_counter::note();
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  alloc_counter::note();
  return __libc_memalign(alignment, size);
}
}
