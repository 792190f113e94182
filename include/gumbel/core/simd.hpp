// The one switch for the hand-written vector kernels. GUMBEL_AVX512 is 1 where the compiler
// targets AVX-512F (-march=native on such a CPU, -mavx512f, /arch:AVX512), unless GUMBEL_NO_SIMD
// is defined: then every kernel takes its generic path (on Eigen's packets), which is the same
// code a CPU without AVX-512 runs.
#pragma once

#if defined(__AVX512F__) && !defined(GUMBEL_NO_SIMD)
#define GUMBEL_AVX512 1
#else
#define GUMBEL_AVX512 0
#endif

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
