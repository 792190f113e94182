// Dropout (Srivastava et al. 2014) with the generator's counter-based uniforms.
#pragma once

#include "gumbel/core/tape.hpp"
#include "gumbel/nn/module.hpp"
#include "gumbel/ops/elementwise.hpp"
#include "gumbel/random/generator.hpp"

namespace gumbel::nn {

/// In training, y = x * m / (1 - p) with m_ij = 1 with probability 1 - p, else 0, drawn from
/// `gen` (the same mask for any thread count) ; dx += dy * m / (1 - p). Otherwise, or with
/// p = 0, y = x. p = 1 zeroes everything (as PyTorch); p outside [0, 1] is a ValueError.
template <class T>
Var<T> dropout(const Var<T>& x, double p, Generator& gen, bool training) {
  Tape<T>& tape = detail::tape_of("nn::dropout", x);
  if (!(p >= 0) || !(p <= 1)) {
    detail::fail<ValueError>("nn::dropout", "p = ", p, " must lie in [0, 1]");
  }
  if (!training || p == 0) return x;
  Var<T> mask = tape.make(x.rows(), x.cols(), false, "nn::dropout");
  T* m = mask.value_mut().data();
  gen.fill_uniform(m, x.size());
  const T keep = T(1 - p);
  const T factor = p == 1 ? T(0) : T(1) / keep;
  auto mv = mask.value_mut().array();
  mv = (mv < keep).template cast<T>() * factor;
  return mul(x, mask);
}

/// Dropout as a layer: nn::dropout with its own p and generator, active in training mode.
template <class T>
class Dropout : public Layer<T> {
 public:
  Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
    if (!(p >= 0) || !(p <= 1)) {
      detail::fail<ValueError>("nn::Dropout", "p = ", p, " must lie in [0, 1]");
    }
  }
  Var<T> forward(const Var<T>& x) override { return dropout(x, p_, *gen_, this->is_training()); }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace gumbel::nn
