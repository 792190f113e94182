// Two problems small enough to enumerate every code, so that the exact gradient of E[f(z)] is
// known and every estimator's bias and variance can be measured against it.
//   Categorical: L latents of C classes, logits theta (L x C), f(z) = (sum_l z_l - target)^2 with
//                z_l the chosen class's index (625 codes by default).
//   Bernoulli:   L binary latents, logits theta (1 x L), f(z) = (sum_l w_l z_l - target)^2 with
//                w_l = 1 + l / L (256 codes by default).
// Each problem builds, for one estimator, the scalar whose gradient at theta is that estimator.
#pragma once

#include <gumbel/gumbel.hpp>
#include <string>
#include <vector>

namespace estimators {

using gumbel::Index;
using Mat = gumbel::Matrix<double>;
using Var = gumbel::Var<double>;

enum class Kind {
  exact,             // the enumerated gradient
  gumbel_soft,       // f at a Gumbel-Softmax / Binary Concrete sample (relaxed z)
  st_gumbel,         // f at the one-hot (0/1) sample, the relaxed sample's gradient
  gumbel_rao,        // ST Gumbel Rao-Blackwellised over M conditional draws
  softmax,           // f at softmax(theta / tau), no noise: the relaxation of the mean
  straight_through,  // plain straight-through: the gradient of softmax(theta / tau)
  reinmax,           // ReinMax's second-order straight-through
  reinforce,         // score function with a moving-average baseline
  rloo,              // score function with the leave-one-out baseline over S samples
};

const char* name_of(Kind k);

/// Whether the estimator has a temperature.
bool uses_tau(Kind k);

/// Per-draw state an estimator keeps (the moving-average baseline).
struct State {
  gumbel::MovingAverageBaseline baseline{0.9};
};

struct Settings {
  Index rao_samples = 10;  // Gumbel-Rao's M
  Index loo_samples = 4;   // RLOO's S (each draw evaluates f S times)
};

class Problem {
 public:
  virtual ~Problem() = default;
  virtual std::string name() const = 0;
  virtual std::vector<Kind> kinds() const = 0;
  virtual Mat initial_logits(std::uint64_t seed) const = 0;
  virtual Index codes() const = 0;
  /// E[f(z)] over every code, on the tape (its gradient is the exact one).
  virtual Var expectation(const Var& theta) const = 0;
  /// The scalar whose gradient at theta is `kind`'s estimate.
  virtual Var objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen,
                        State& state) const = 0;
};

struct CategoricalOptions {
  Index latents = 4;
  Index classes = 5;
  double target = 6;
};

class Categorical final : public Problem {
 public:
  Categorical(const CategoricalOptions& o, const Settings& s);
  std::string name() const override { return "categorical"; }
  std::vector<Kind> kinds() const override;
  Mat initial_logits(std::uint64_t seed) const override;
  Index codes() const override { return f_.cols(); }
  Var expectation(const Var& theta) const override;
  Var objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen,
                State& state) const override;

 private:
  Var f(const Var& z) const;  // f of a (relaxed) one-hot z, L x C
  double f_of(const gumbel::IndexVector& z, Index first) const;  // f of classes z[first..+L)
  CategoricalOptions o_;
  Settings s_;
  Mat values_;   // L x C: the value of each class
  Mat pattern_;  // (L*C) x codes, 1 where the code picks that class
  Mat f_;        // 1 x codes
};

struct BernoulliOptions {
  Index latents = 8;
  double target = 3.5;
};

class Bernoulli final : public Problem {
 public:
  Bernoulli(const BernoulliOptions& o, const Settings& s);
  std::string name() const override { return "bernoulli"; }
  std::vector<Kind> kinds() const override;
  Mat initial_logits(std::uint64_t seed) const override;
  Index codes() const override { return f_.cols(); }
  Var expectation(const Var& theta) const override;
  Var objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen,
                State& state) const override;

 private:
  Var f(const Var& z) const;  // f of a (relaxed) z, 1 x L
  BernoulliOptions o_;
  Settings s_;
  Mat weights_;  // L x 1
  Mat codes_;    // codes x L of 0/1
  Mat f_;        // 1 x codes
};

}  // namespace estimators
