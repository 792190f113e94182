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

/// Throws a ValueError naming `op` for a null pointer in the list.
template <class T>
void require_no_null(const char* op, const ParameterList<T>& params) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i] == nullptr) {
      gumbel::detail::fail<ValueError>(op, "parameter pointer ", i, " is null");
    }
  }
}

/// Throws a ValueError for an empty list or a null pointer in it.
template <class T>
void require_parameters(const char* optimizer, const ParameterList<T>& params) {
  if (params.empty()) {
    gumbel::detail::fail<ValueError>(optimizer,
                                     "the parameter list is empty (nothing to optimize)");
  }
  require_no_null(optimizer, params);
}

}  // namespace gumbel::optim::detail
