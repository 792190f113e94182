// Checks shared by the optimizers.
#pragma once

#include <cmath>

#include "gumbel/core/error.hpp"
#include "gumbel/core/parameter.hpp"

namespace gumbel::optim::detail {

/// Throws a ValueError unless lo <= value < hi (or <= hi when `hi_open` is false), naming the
/// optimizer and the hyper-parameter.
template <class T>
void require_range(const char* optimizer, const char* name, T value, T lo, bool lo_open, T hi,
                   bool hi_open) {
  const bool above = lo_open ? value > lo : value >= lo;
  const bool below = hi_open ? value < hi : value <= hi;
  if (!(above && below) || std::isnan(value)) {
    gumbel::detail::fail<ValueError>(optimizer, name, " = ", value, " is invalid: it must lie in ",
                                     lo_open ? "(" : "[", lo, ", ", hi, hi_open ? ")" : "]");
  }
}

/// Throws a ValueError for an empty list or a null pointer in it.
template <class T>
void require_parameters(const char* optimizer, const ParameterList<T>& params) {
  if (params.empty()) {
    gumbel::detail::fail<ValueError>(optimizer,
                                     "the parameter list is empty (nothing to optimize)");
  }
  for (const Parameter<T>* p : params) {
    if (p == nullptr) gumbel::detail::fail<ValueError>(optimizer, "a parameter pointer is null");
  }
}

}  // namespace gumbel::optim::detail
