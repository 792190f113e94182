// Gradient estimators side by side on a problem small enough to solve exactly.
//
// L categorical latents of C classes with logits theta (L x C); a code z takes one class per
// latent, and f(z) = (sum_l value(z_l) - target)^2 with value(c) = c. The goal is to minimise
// E_{z ~ softmax(theta)}[f(z)]. With C^L codes (625 by default) the expectation and its
// gradient are exact by enumeration, so every estimator's bias and variance can be measured,
// and every learning curve can be scored by the true objective. Compared:
//   exact          the enumerated gradient
//   gumbel-soft    f at a Gumbel-Softmax sample (relaxed z)
//   straight-thru  f at the one-hot sample, the soft sample's gradient
//   gumbel-rao     straight-through Rao-Blackwellised over M conditional draws
//   softmax        f at softmax(theta / tau), no noise: the relaxation of the mean
// Writes gradient_variance.svg, gradient_bias.svg, learning_curves.svg and estimators.csv.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <gumbel/gumbel.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "chart.hpp"
#include "files.hpp"

namespace {

using gumbel::Index;
using Mat = gumbel::Matrix<double>;
using Var = gumbel::Var<double>;

struct Options {
  Index latents = 4;
  Index classes = 5;
  double target = 6;
  Index samples = 2000;  // gradient draws per estimator and temperature
  int steps = 500;
  double lr = 0.05;
  double tau = 0.5;  // temperature of the learning curves
  Index rao_samples = 10;
  std::uint64_t seed = 7;
  std::string out = "out/estimators";
};

enum class Kind { exact, soft, straight_through, gumbel_rao, softmax };
constexpr Kind kKinds[] = {Kind::exact, Kind::soft, Kind::straight_through, Kind::gumbel_rao,
                           Kind::softmax};

const char* name_of(Kind k) {
  switch (k) {
    case Kind::exact:
      return "exact";
    case Kind::soft:
      return "gumbel-soft";
    case Kind::straight_through:
      return "straight-through";
    case Kind::gumbel_rao:
      return "gumbel-rao";
    case Kind::softmax:
      return "softmax (no noise)";
  }
  return "?";
}

/// Everything about the codes: for each, its one-hot pattern and its f.
class Problem {
 public:
  explicit Problem(const Options& o) : o_(o), values_(o.latents, o.classes) {
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

  /// f of a (relaxed or one-hot) z on the tape: (sum z * value - target)^2.
  Var f(const Var& z) const {
    Var s = gumbel::sum(gumbel::mul(z, z.tape().constant(values_)));
    return gumbel::square(gumbel::shift(s, -o_.target));
  }

  /// E[f(z)] over all codes, on the tape: log p(code) = sum_l log_softmax(theta)_l,c_l.
  Var expectation(const Var& theta) const {
    gumbel::Tape<double>& tape = theta.tape();
    const Var log_q = gumbel::reshape(gumbel::log_softmax(theta), 1, theta.size());
    const Var p = gumbel::exp(gumbel::matmul(log_q, tape.constant(pattern_)));
    return gumbel::sum(gumbel::mul(p, tape.constant(f_)));
  }

  /// The objective one estimator differentiates; exact gives the true gradient.
  Var objective(Kind kind, const Var& theta, double tau, gumbel::Generator& gen) const {
    switch (kind) {
      case Kind::exact:
        return expectation(theta);
      case Kind::soft:
        return f(gumbel::gumbel_softmax(theta, tau, gen));
      case Kind::straight_through:
        return f(gumbel::gumbel_softmax(theta, tau, gen, true));
      case Kind::gumbel_rao:
        return f(gumbel::gumbel_rao(theta, tau, gen, o_.rao_samples));
      case Kind::softmax:
        return f(gumbel::softmax(gumbel::scale(theta, 1.0 / tau)));
    }
    return expectation(theta);
  }

  Index codes() const { return f_.cols(); }

 private:
  Options o_;
  Mat values_;
  Mat pattern_;  // (L*C) x codes, 1 where the code picks that class
  Mat f_;        // 1 x codes
};

/// One gradient of `kind` at theta (and the objective's value).
Mat gradient(const Problem& problem, Kind kind, gumbel::Parameter<double>& theta, double tau,
             gumbel::Generator& gen, gumbel::Tape<double>& tape) {
  tape.clear();
  theta.grad.setZero();
  tape.backward(problem.objective(kind, tape.parameter(theta), tau, gen));
  return theta.grad;
}

double true_objective(const Problem& problem, const Mat& theta_value) {
  gumbel::Tape<double> tape;
  return problem.expectation(tape.constant(theta_value)).item();
}

struct Moments {
  double bias = 0;      // || mean estimate - exact gradient ||
  double variance = 0;  // sum over the L*C entries of the estimate's variance
};

Moments measure(const Problem& problem, Kind kind, const Mat& theta0, const Mat& exact, double tau,
                const Options& o) {
  gumbel::Parameter<double> theta(theta0);
  gumbel::Tape<double> tape;
  gumbel::Generator gen(o.seed, 1);
  Mat sum = Mat::Zero(theta0.rows(), theta0.cols());
  Mat sum_sq = sum;
  for (Index n = 0; n < o.samples; ++n) {
    const Mat g = gradient(problem, kind, theta, tau, gen, tape);
    sum += g;
    sum_sq += g.cwiseProduct(g);
  }
  const double count = double(o.samples);
  const Mat mean = sum / count;
  Moments m;
  m.bias = (mean - exact).norm();
  // Clamped at 0: a deterministic estimator must not show a rounding residue as variance.
  m.variance =
      std::max(0.0, ((sum_sq / count - mean.cwiseProduct(mean)) * (count / (count - 1))).sum());
  return m;
}

std::vector<double> learning_curve(const Problem& problem, Kind kind, const Mat& theta0,
                                   const Options& o) {
  gumbel::Parameter<double> theta(theta0);
  gumbel::optim::Adam<double> adam({&theta}, {o.lr});
  gumbel::Tape<double> tape;
  gumbel::Generator gen(o.seed, 2);
  std::vector<double> curve{true_objective(problem, theta.value)};
  for (int step = 0; step < o.steps; ++step) {
    gradient(problem, kind, theta, o.tau, gen, tape);
    adam.step();
    curve.push_back(true_objective(problem, theta.value));
  }
  return curve;
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{"Gumbel gradient estimators side by side, against the exact gradient"};
  app.option_defaults()->always_capture_default();
  app.add_option("--latents", o.latents, "categorical latents L")->check(CLI::Range(1, 8));
  app.add_option("--classes", o.classes, "classes per latent C")->check(CLI::Range(2, 16));
  app.add_option("--target", o.target, "f(z) = (sum of chosen classes - target)^2");
  app.add_option("--samples", o.samples, "gradient draws per estimator and temperature")
      ->check(CLI::Range(Index{2}, Index{1000000}));
  app.add_option("--steps", o.steps, "optimisation steps of each learning curve")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--lr", o.lr, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--tau", o.tau, "temperature of the learning curves")->check(CLI::PositiveNumber);
  app.add_option("--rao-samples", o.rao_samples, "Gumbel-Rao's conditional draws M")
      ->check(CLI::Range(Index{1}, Index{1000}));
  app.add_option("--seed", o.seed, "seed of the initial logits and of all noise");
  app.add_option("--out", o.out, "output folder");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  Index codes = 1;
  for (Index l = 0; l < o.latents; ++l) codes *= o.classes;
  if (codes > 1 << 16) {
    std::fprintf(stderr,
                 "--latents %ld --classes %ld: %ld codes are too many to enumerate "
                 "(at most 65536)\n",
                 long(o.latents), long(o.classes), long(codes));
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.out);
  const Problem problem(o);
  gumbel::Generator init(o.seed);
  const Mat theta0 = init.normal<double>(o.latents, o.classes, 0.0, 0.5);
  std::printf("%ld latents x %ld classes: %ld codes; E[f] at the start = %.4f\n", long(o.latents),
              long(o.classes), long(problem.codes()), true_objective(problem, theta0));

  // Bias and variance of each estimator's gradient at theta0, across temperatures.
  gumbel::Parameter<double> theta(theta0);
  gumbel::Tape<double> tape;
  gumbel::Generator unused(0);
  const Mat exact = gradient(problem, Kind::exact, theta, 1.0, unused, tape);
  const std::vector<double> taus = {0.1, 0.2, 0.5, 1.0, 2.0, 5.0};
  examples::Chart variance{"Gradient variance at the initial logits (sum over entries)",
                           "temperature tau",
                           "variance",
                           true,
                           true,
                           {}};
  examples::Chart bias{"Gradient bias: |E[estimate] - exact gradient|",
                       "temperature tau",
                       "bias (norm)",
                       true,
                       true,
                       {}};
  std::ostringstream csv;
  csv << "estimator,tau,bias,variance,mse\n";
  std::printf("\n%-20s %6s %12s %12s %12s\n", "estimator", "tau", "bias", "variance", "mse");
  for (Kind kind : {Kind::soft, Kind::straight_through, Kind::gumbel_rao, Kind::softmax}) {
    examples::Series v{name_of(kind), {}, {}, true}, b{name_of(kind), {}, {}, true};
    for (double tau : taus) {
      const Moments m = measure(problem, kind, theta0, exact, tau, o);
      v.x.push_back(tau);
      v.y.push_back(m.variance);
      b.x.push_back(tau);
      b.y.push_back(m.bias);
      const double mse = m.bias * m.bias + m.variance;
      csv << name_of(kind) << ',' << tau << ',' << m.bias << ',' << m.variance << ',' << mse
          << '\n';
      std::printf("%-20s %6.2f %12.5f %12.5f %12.5f\n", name_of(kind), tau, m.bias, m.variance,
                  mse);
    }
    variance.series.push_back(v);
    bias.series.push_back(b);
  }
  std::printf("(exact gradient norm %.5f)\n", exact.norm());

  // Learning curves, each scored by the exact objective.
  examples::Chart curves{
      "E[f(z)] while training (tau = " + std::to_string(o.tau).substr(0, 4) + ")",
      "step",
      "exact E[f(z)]",
      false,
      true,
      {}};
  std::printf("\n%-20s %12s\n", "estimator", "final E[f]");
  for (Kind kind : kKinds) {
    const std::vector<double> curve = learning_curve(problem, kind, theta0, o);
    examples::Series s{name_of(kind), {}, curve, false};
    for (std::size_t i = 0; i < curve.size(); ++i) s.x.push_back(double(i));
    curves.series.push_back(s);
    std::printf("%-20s %12.5f\n", name_of(kind), curve.back());
    csv << name_of(kind) << ",curve," << curve.back() << ",,\n";
  }
  examples::write_chart(o.out + "/gradient_variance.svg", variance);
  examples::write_chart(o.out + "/gradient_bias.svg", bias);
  examples::write_chart(o.out + "/learning_curves.svg", curves);
  examples::write_file_atomic(o.out + "/estimators.csv", csv.str());
  std::printf("\nwrote %s/{gradient_variance,gradient_bias,learning_curves}.svg, estimators.csv\n",
              o.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "estimators: %s\n", e.what());
  return 1;
}
