// Small numeric helpers shared by the ops.
#pragma once

#include <cmath>
#include <limits>

namespace gumbel::detail {

/// The argument below which e^x is subnormal: log of the smallest normal number.
template <class T>
inline const T kMinExpArg = std::log(std::numeric_limits<T>::min());

/// e^x elementwise, exactly 0 where the result would be subnormal. Eigen's vectorised exp
/// clamps its argument and returns about 1e-308 for -inf in double, which would give a masked
/// class a probability that is not 0.
template <class ArrayExpr>
auto exp_flush(const ArrayExpr& x) {
  using T = typename ArrayExpr::Scalar;
  return (x > kMinExpArg<T>).select(x.exp(), T(0));
}

}  // namespace gumbel::detail
