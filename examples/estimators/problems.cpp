#include "problems.hpp"

namespace estimators {

const char* name_of(Kind k) {
  switch (k) {
    case Kind::exact:
      return "exact";
    case Kind::gumbel_soft:
      return "gumbel-soft";
    case Kind::st_gumbel:
      return "st-gumbel";
    case Kind::gumbel_rao:
      return "gumbel-rao";
    case Kind::softmax:
      return "softmax (no noise)";
    case Kind::straight_through:
      return "straight-through";
    case Kind::reinmax:
      return "reinmax";
    case Kind::reinforce:
      return "reinforce";
    case Kind::rloo:
      return "rloo";
  }
  return "?";
}

bool uses_tau(Kind k) {
  return k != Kind::exact && k != Kind::reinforce && k != Kind::rloo;
}

namespace {

/// The 1x1 sum over the rows of a (rows x 1) column in groups of `group` consecutive rows:
/// (rows / group) x 1 per-sample sums, as a 1 x (rows / group) row.
Var group_sums(const Var& column, Index group) {
  const Index samples = column.rows() / group;
  gumbel::Tape<double>& tape = column.tape();
  return gumbel::reshape(
      gumbel::matmul(gumbel::reshape(column, samples, group), tape.constant(Mat::Ones(group, 1))),
      1, samples);
}

/// theta's rows stacked `copies` times: a product with [I; I; ...] (its gradient sums them).
Var replicate_rows(const Var& theta, Index copies) {
  const Index rows = theta.rows();
  Mat stack(rows * copies, rows);
  for (Index c = 0; c < copies; ++c) stack.middleRows(c * rows, rows).setIdentity();
  return gumbel::matmul(theta.tape().constant(stack), theta);
}

}  // namespace

// ---- categorical ------------------------------------------------------------------------------

Categorical::Categorical(const CategoricalOptions& o, const Settings& s)
    : o_(o), s_(s), values_(o.latents, o.classes) {
  for (Index l = 0; l < o.latents; ++l) {
    for (Index c = 0; c < o.classes; ++c) values_(l, c) = double(c);
  }
  Index codes = 1;
  for (Index l = 0; l < o.latents; ++l) codes *= o.classes;
  pattern_ = Mat::Zero(o.latents * o.classes, codes);
  f_ = Mat(1, codes);
  for (Index code = 0; code < codes; ++code) {
    double total = 0;
    for (Index l = 0, rest = code; l < o.latents; ++l, rest /= o.classes) {
      pattern_(l * o.classes + rest % o.classes, code) = 1;
      total += values_(l, rest % o.classes);
    }
    f_(0, code) = (total - o.target) * (total - o.target);
  }
}

std::vector<Kind> Categorical::kinds() const {
  return {Kind::exact,      Kind::gumbel_soft, Kind::st_gumbel,
          Kind::gumbel_rao, Kind::softmax,     Kind::straight_through,
          Kind::reinmax,    Kind::reinforce,   Kind::rloo};
}

Mat Categorical::initial_logits(std::uint64_t seed) const {
  gumbel::Generator init(seed);
  return init.normal<double>(o_.latents, o_.classes, 0.0, 0.5);
}

// f(z) = (sum z * value - target)^2 for a (relaxed or one-hot) z on the tape
Var Categorical::f(const Var& z) const {
  Var s = gumbel::sum(gumbel::mul(z, z.tape().constant(values_)));
  return gumbel::square(gumbel::shift(s, -o_.target));
}

double Categorical::f_of(const gumbel::IndexVector& z, Index first) const {
  double total = 0;
  for (Index l = 0; l < o_.latents; ++l) total += values_(l, z(first + l));
  return (total - o_.target) * (total - o_.target);
}

// E[f] = sum_codes p(code) f(code), log p(code) = sum_l log_softmax(theta)_{l, c_l}
Var Categorical::expectation(const Var& theta) const {
  gumbel::Tape<double>& tape = theta.tape();
  const Var log_q = gumbel::reshape(gumbel::log_softmax(theta), 1, theta.size());
  const Var p = gumbel::exp(gumbel::matmul(log_q, tape.constant(pattern_)));
  return gumbel::sum(gumbel::mul(p, tape.constant(f_)));
}

Var Categorical::objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen,
                           State& state) const {
  switch (kind) {
    case Kind::exact:
      return expectation(theta);
    case Kind::gumbel_soft:
      return f(gumbel::gumbel_softmax(theta, tau, gen));
    case Kind::st_gumbel:
      return f(gumbel::gumbel_softmax(theta, tau, gen, true));
    case Kind::gumbel_rao:
      return f(gumbel::gumbel_rao(theta, tau, gen, s_.rao_samples));
    case Kind::softmax:
      return f(gumbel::softmax(gumbel::scale(theta, 1.0 / tau)));
    case Kind::straight_through:
      return f(gumbel::straight_through(theta, gen, tau));
    case Kind::reinmax:
      return f(gumbel::reinmax(theta, gen, tau));
    case Kind::reinforce: {
      const gumbel::IndexVector z = gumbel::gumbel_max(theta.value(), gen);
      const Var log_q = gumbel::sum(gumbel::categorical_log_prob(theta, z));
      return gumbel::reinforce(log_q, Mat::Constant(1, 1, f_of(z, 0)), state.baseline);
    }
    case Kind::rloo: {
      const Index s = s_.loo_samples;
      const Var stacked = replicate_rows(theta, s);
      const gumbel::IndexVector z = gumbel::gumbel_max(stacked.value(), gen);
      const Var log_q = group_sums(gumbel::categorical_log_prob(stacked, z), o_.latents);
      Mat fs(1, s);
      for (Index i = 0; i < s; ++i) fs(0, i) = f_of(z, i * o_.latents);
      // rloo averages over its S entries; the estimate is the sum of S per-sample terms / S.
      return gumbel::rloo(log_q, fs);
    }
  }
  return expectation(theta);
}

// ---- Bernoulli --------------------------------------------------------------------------------

Bernoulli::Bernoulli(const BernoulliOptions& o, const Settings& s)
    : o_(o), s_(s), weights_(o.latents, 1) {
  for (Index l = 0; l < o.latents; ++l) weights_(l, 0) = 1.0 + double(l) / double(o.latents);
  const Index codes = Index{1} << o.latents;
  codes_ = Mat(codes, o.latents);
  f_ = Mat(1, codes);
  for (Index code = 0; code < codes; ++code) {
    for (Index l = 0; l < o.latents; ++l) codes_(code, l) = double((code >> l) & 1);
    const double total = codes_.row(code).dot(weights_.col(0));
    f_(0, code) = (total - o.target) * (total - o.target);
  }
}

std::vector<Kind> Bernoulli::kinds() const {
  return {Kind::exact, Kind::gumbel_soft, Kind::st_gumbel, Kind::reinforce, Kind::rloo};
}

Mat Bernoulli::initial_logits(std::uint64_t seed) const {
  gumbel::Generator init(seed);
  return init.normal<double>(1, o_.latents, 0.0, 0.5);
}

// f(z) = (z . w - target)^2
Var Bernoulli::f(const Var& z) const {
  const Var s = gumbel::matmul(z, z.tape().constant(weights_));
  return gumbel::sum(gumbel::square(gumbel::shift(s, -o_.target)));
}

// log p(code) = sum_l z_l ln sigmoid(theta_l) + (1 - z_l) ln sigmoid(-theta_l)
Var Bernoulli::expectation(const Var& theta) const {
  gumbel::Tape<double>& tape = theta.tape();
  const Mat ones = Mat::Ones(1, o_.latents);
  const Var log_on = gumbel::bernoulli_log_prob(theta, tape.constant(ones));
  const Var log_off = gumbel::bernoulli_log_prob(theta, tape.constant(Mat::Zero(1, o_.latents)));
  const Mat on = codes_.transpose();
  const Mat off = (1.0 - codes_.array()).matrix().transpose();
  const Var log_p = gumbel::add(gumbel::matmul(log_on, tape.constant(on)),
                                gumbel::matmul(log_off, tape.constant(off)));
  return gumbel::sum(gumbel::mul(gumbel::exp(log_p), tape.constant(f_)));
}

Var Bernoulli::objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen,
                         State& state) const {
  gumbel::Tape<double>& tape = theta.tape();
  // An exact Bernoulli(sigmoid(theta)) sample of `rows` copies, as 0/1 constants.
  const auto sample = [&](Index rows) {
    const Var stacked_value = tape.constant(theta.value().replicate(rows, 1));
    return gumbel::binary_concrete(stacked_value, 1.0, gen, true).value();
  };
  switch (kind) {
    case Kind::exact:
      return expectation(theta);
    case Kind::gumbel_soft:
      return f(gumbel::binary_concrete(theta, tau, gen));
    case Kind::st_gumbel:
      return f(gumbel::binary_concrete(theta, tau, gen, true));
    case Kind::reinforce: {
      const Mat z = sample(1);
      const Var log_q = gumbel::sum(gumbel::bernoulli_log_prob(theta, tape.constant(z)));
      const double total = z.row(0).dot(weights_.col(0)) - o_.target;
      return gumbel::reinforce(log_q, Mat::Constant(1, 1, total * total), state.baseline);
    }
    case Kind::rloo: {
      const Index s = s_.loo_samples;
      const Var stacked = replicate_rows(theta, s);
      const Mat z = sample(s);
      const Var per_sample = gumbel::matmul(gumbel::bernoulli_log_prob(stacked, tape.constant(z)),
                                            tape.constant(Mat::Ones(o_.latents, 1)));
      const Mat totals = (z * weights_).array() - o_.target;
      return gumbel::rloo(gumbel::reshape(per_sample, 1, s),
                          Mat(totals.array().square().matrix().transpose()));
    }
    default:
      break;
  }
  return expectation(theta);
}

}  // namespace estimators
