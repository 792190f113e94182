// The one switch for the hand-written vector kernels, and the run-time choice between them and
// their generic twins.
//
// Compile time: GUMBEL_AVX512 is 1 where the compiler targets AVX-512F (-march=native on such a
// CPU, -mavx512f, /arch:AVX512), GUMBEL_AVX2 where it targets AVX2 with FMA (-march=haswell,
// -march=x86-64-v3 and later, /arch:AVX2), each unless GUMBEL_NO_SIMD is defined; without them
// every kernel is its generic twin (core/simd/generic/), plain C++ the compiler vectorises as it
// can (SSE2, NEON). Where both vector sets are compiled, AVX-512 runs.
// Run time: simd::use_kernel_set(set) makes every dispatch (core/simd/dispatch.hpp) take any
// compiled set, simd::use_vector_kernels(false) the generic one, for a whole program or a test
// that compares them. Float samples are the same bits with every set.
#pragma once

#include <atomic>

#if defined(__AVX512F__) && !defined(GUMBEL_NO_SIMD)
#define GUMBEL_AVX512 1
#else
#define GUMBEL_AVX512 0
#endif

#if defined(__AVX2__) && defined(__FMA__) && !defined(GUMBEL_NO_SIMD)
#define GUMBEL_AVX2 1
#else
#define GUMBEL_AVX2 0
#endif

namespace gumbel::simd {

/// The kernel sets, from the most portable to the widest.
enum class KernelSet { generic = 0, avx2 = 1, avx512 = 2 };

/// The widest set compiled into this program.
inline constexpr KernelSet kWidest = GUMBEL_AVX512 ? KernelSet::avx512
                                     : GUMBEL_AVX2 ? KernelSet::avx2
                                                   : KernelSet::generic;

/// True when `set` is compiled into this program (generic always is; an AVX-512 build also has
/// the AVX2 set).
constexpr bool compiled(KernelSet set) noexcept {
  return set == KernelSet::generic || (set == KernelSet::avx2 && GUMBEL_AVX2) ||
         (set == KernelSet::avx512 && GUMBEL_AVX512);
}

namespace detail {
inline std::atomic<int> kernel_set_in_use{static_cast<int>(kWidest)};
}  // namespace detail

/// The set the dispatch takes now.
inline KernelSet kernel_set() noexcept {
  return static_cast<KernelSet>(detail::kernel_set_in_use.load(std::memory_order_relaxed));
}

/// Makes every dispatch take `set`, for every thread; false (and no change) when it is not
/// compiled in. Not for use while another thread is sampling.
inline bool use_kernel_set(KernelSet set) noexcept {
  if (!compiled(set)) return false;
  detail::kernel_set_in_use.store(static_cast<int>(set), std::memory_order_relaxed);
  return true;
}

/// True when hand-written vector kernels (AVX-512 or AVX2) run.
inline bool vector_kernels() noexcept {
  return kernel_set() != KernelSet::generic;
}

/// Switches the vector kernels off (false: the generic set) or back on (true: the widest set).
inline void use_vector_kernels(bool on) noexcept {
  use_kernel_set(on ? kWidest : KernelSet::generic);
}

/// The name of a set: "generic", "avx2" or "avx512".
inline const char* name(KernelSet set) noexcept {
  return set == KernelSet::avx512 ? "avx512" : set == KernelSet::avx2 ? "avx2" : "generic";
}

}  // namespace gumbel::simd

namespace gumbel::detail {

/// The index of the lowest set bit of a non-zero mask.
inline int lowest_set_bit(unsigned mask) {
#if defined(__GNUC__)
  return __builtin_ctz(mask);
#else
  int i = 0;
  for (; (mask & 1u) == 0; mask >>= 1) ++i;
  return i;
#endif
}

}  // namespace gumbel::detail
