// The one switch for the hand-written vector kernels, and the run-time choice between them and
// their generic twins.
//
// Compile time: GUMBEL_AVX512 is 1 where the compiler targets AVX-512F (-march=native on such a
// CPU, -mavx512f, /arch:AVX512) unless GUMBEL_NO_SIMD is defined; then no AVX-512 code is
// compiled and every kernel is its generic twin (core/simd/generic/), written so that the
// compiler vectorises it for the target (SSE2, AVX2, NEON).
// Run time: where the AVX-512 kernels are compiled, simd::use_vector_kernels(false) makes every
// dispatch (core/simd/dispatch.hpp) take the generic twin instead, for a whole program or a test
// that compares the two. Float samples are the same bits either way.
#pragma once

#include <atomic>

#if defined(__AVX512F__) && !defined(GUMBEL_NO_SIMD)
#define GUMBEL_AVX512 1
#else
#define GUMBEL_AVX512 0
#endif

namespace gumbel::simd {

namespace detail {
inline std::atomic<bool> vector_kernels_on{true};
}  // namespace detail

/// True when the hand-written AVX-512 kernels run: compiled in, and not switched off.
inline bool vector_kernels() noexcept {
  return GUMBEL_AVX512 && detail::vector_kernels_on.load(std::memory_order_relaxed);
}

/// Switches the AVX-512 kernels off (false) or back on (true) for every thread. Without them
/// compiled in, the call changes nothing. Not for use while another thread is sampling.
inline void use_vector_kernels(bool on) noexcept {
  detail::vector_kernels_on.store(on, std::memory_order_relaxed);
}

/// The name of the kernels that run: "avx512" or "generic".
inline const char* kernel_set() noexcept {
  return vector_kernels() ? "avx512" : "generic";
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
