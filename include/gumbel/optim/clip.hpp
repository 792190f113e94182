// Gradient clipping by the global norm, as torch.nn.utils.clip_grad_norm_.
#pragma once

#include <cmath>

#include "gumbel/core/parameter.hpp"
#include "gumbel/optim/common.hpp"

namespace gumbel::optim {

/// total = sqrt(sum over the parameters of |grad|^2) (in double); when total > max_norm every
/// gradient is multiplied by max_norm / (total + 1e-6), PyTorch's rule. Returns total (NaN or
/// inf when a gradient is, and then the gradients become NaN, as PyTorch's default). A null
/// pointer in the list is a ValueError.
template <class T>
double clip_grad_norm(const ParameterList<T>& params, double max_norm) {
  detail::require_range("clip_grad_norm", "max_norm", max_norm, 0.0, false, double(INFINITY), true);
  detail::require_no_null("clip_grad_norm", params);
  double squares = 0;
  for (const Parameter<T>* p : params) squares += p->grad.template cast<double>().squaredNorm();
  const double total = std::sqrt(squares);
  const double coefficient = max_norm / (total + 1e-6);
  if (coefficient < 1 || std::isnan(coefficient)) {
    for (Parameter<T>* p : params) p->grad *= T(coefficient);
  }
  return total;
}

}  // namespace gumbel::optim
