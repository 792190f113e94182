// Gradient estimators side by side on problems small enough to solve exactly (problems.hpp):
// L categorical latents (625 codes) and L Bernoulli latents (256 codes). For each estimator it
// measures the bias and the variance of the gradient at the initial logits against the
// enumerated gradient, across temperatures, and trains with Adam scoring every step by the exact
// objective. Writes, per problem, <problem>_bias.svg, <problem>_variance.svg,
// <problem>_curves.svg, and estimators.csv with every figure.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "chart.hpp"
#include "files.hpp"
#include "problems.hpp"

namespace {

using estimators::Index;
using estimators::Kind;
using estimators::Mat;

struct Options {
  estimators::CategoricalOptions categorical;
  estimators::BernoulliOptions bernoulli;
  estimators::Settings settings;
  Index samples = 20000;  // gradient draws per estimator and temperature
  int steps = 500;
  double lr = 0.05;
  double tau = 0.5;     // temperature of the Gumbel estimators' learning curves
  double st_tau = 1.0;  // temperature of plain straight-through's and ReinMax's curves
  std::uint64_t seed = 7;
  std::string out = "out/estimators";
};

/// One gradient of `kind` at theta.
Mat gradient(const estimators::Problem& problem, Kind kind, gumbel::Parameter<double>& theta,
             double tau, gumbel::Generator& gen, estimators::State& state,
             gumbel::Tape<double>& tape) {
  tape.clear();
  theta.grad.setZero();
  tape.backward(problem.objective(kind, tape.parameter(theta), tau, gen, state));
  return theta.grad;
}

double true_objective(const estimators::Problem& problem, const Mat& theta_value) {
  gumbel::Tape<double> tape;
  return problem.expectation(tape.constant(theta_value)).item();
}

struct Moments {
  double bias = 0;      // || mean estimate - exact gradient ||
  double variance = 0;  // sum over the entries of the estimate's variance
};

Moments measure(const estimators::Problem& problem, Kind kind, const Mat& theta0, const Mat& exact,
                double tau, const Options& o) {
  gumbel::Parameter<double> theta(theta0);
  gumbel::Tape<double> tape;
  gumbel::Generator gen(o.seed, 1);
  estimators::State state;
  Mat sum = Mat::Zero(theta0.rows(), theta0.cols());
  Mat sum_sq = sum;
  for (Index n = 0; n < o.samples; ++n) {
    const Mat g = gradient(problem, kind, theta, tau, gen, state, tape);
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

std::vector<double> learning_curve(const estimators::Problem& problem, Kind kind, const Mat& theta0,
                                   double tau, const Options& o) {
  gumbel::Parameter<double> theta(theta0);
  gumbel::optim::Adam<double> adam({&theta}, {o.lr});
  gumbel::Tape<double> tape;
  gumbel::Generator gen(o.seed, 2);
  estimators::State state;
  std::vector<double> curve{true_objective(problem, theta.value)};
  for (int step = 0; step < o.steps; ++step) {
    gradient(problem, kind, theta, tau, gen, state, tape);
    adam.step();
    curve.push_back(true_objective(problem, theta.value));
  }
  return curve;
}

/// Bias and variance across temperatures, and the learning curves, of one problem.
void run(const estimators::Problem& problem, const Options& o, std::ostringstream& csv) {
  const Mat theta0 = problem.initial_logits(o.seed);
  const std::string name = problem.name();
  std::printf("\n== %s: %ld codes; E[f] at the start = %.4f\n", name.c_str(), long(problem.codes()),
              true_objective(problem, theta0));
  gumbel::Parameter<double> theta(theta0);
  gumbel::Tape<double> tape;
  gumbel::Generator unused(0);
  estimators::State unused_state;
  const Mat exact = gradient(problem, Kind::exact, theta, 1.0, unused, unused_state, tape);
  const std::vector<double> taus = {0.1, 0.2, 0.5, 1.0, 2.0, 5.0};
  examples::Chart variance{name + ": gradient variance at the initial logits (sum over entries)",
                           "temperature tau",
                           "variance",
                           true,
                           true,
                           {}};
  examples::Chart bias{name + ": gradient bias |E[estimate] - exact gradient|",
                       "temperature tau",
                       "bias (norm)",
                       true,
                       true,
                       {}};
  // The Monte Carlo error of the measured bias: |mean - E[estimate]| is about
  // sqrt(variance / samples), so a bias below about twice it is consistent with 0.
  const auto noise = [&](const Moments& m) { return std::sqrt(m.variance / double(o.samples)); };
  std::printf("%-20s %6s %12s %12s %12s %12s\n", "estimator", "tau", "bias", "(noise)", "variance",
              "mse");
  for (Kind kind : problem.kinds()) {
    if (kind == Kind::exact) continue;
    examples::Series v{estimators::name_of(kind), {}, {}, true};
    examples::Series b{estimators::name_of(kind), {}, {}, true};
    // An estimator without a temperature is measured once and drawn flat across the axis.
    const Moments fixed = uses_tau(kind) ? Moments{} : measure(problem, kind, theta0, exact, 1, o);
    for (double tau : taus) {
      const Moments m = uses_tau(kind) ? measure(problem, kind, theta0, exact, tau, o) : fixed;
      v.x.push_back(tau);
      v.y.push_back(m.variance);
      b.x.push_back(tau);
      b.y.push_back(m.bias);
      const double mse = m.bias * m.bias + m.variance;
      if (uses_tau(kind) || tau == taus.front()) {
        csv << name << ',' << estimators::name_of(kind) << ','
            << (uses_tau(kind) ? std::to_string(tau) : std::string("-")) << ',' << m.bias << ','
            << m.variance << ',' << mse << ',' << noise(m) << '\n';
        std::printf("%-20s %6s %12.5f %12.5f %12.5f %12.5f\n", estimators::name_of(kind),
                    uses_tau(kind) ? std::to_string(tau).substr(0, 4).c_str() : "-", m.bias,
                    noise(m), m.variance, mse);
      }
    }
    variance.series.push_back(v);
    bias.series.push_back(b);
  }
  std::printf("(exact gradient norm %.5f)\n", exact.norm());

  examples::Chart curves{name + ": E[f(z)] while training (Gumbel tau = " +
                             std::to_string(o.tau).substr(0, 4) + ", straight-through and " +
                             "ReinMax tau = " + std::to_string(o.st_tau).substr(0, 4) + ")",
                         "step",
                         "exact E[f(z)]",
                         false,
                         true,
                         {}};
  std::printf("%-20s %12s\n", "estimator", "final E[f]");
  for (Kind kind : problem.kinds()) {
    const bool st = kind == Kind::straight_through || kind == Kind::reinmax;
    const std::vector<double> curve =
        learning_curve(problem, kind, theta0, st ? o.st_tau : o.tau, o);
    examples::Series s{estimators::name_of(kind), {}, curve, false};
    for (std::size_t i = 0; i < curve.size(); ++i) s.x.push_back(double(i));
    curves.series.push_back(s);
    std::printf("%-20s %12.5f\n", estimators::name_of(kind), curve.back());
    csv << name << ',' << estimators::name_of(kind) << ",curve," << curve.back() << ",,,\n";
  }
  examples::write_chart(o.out + "/" + name + "_variance.svg", variance);
  examples::write_chart(o.out + "/" + name + "_bias.svg", bias);
  examples::write_chart(o.out + "/" + name + "_curves.svg", curves);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app{"Gradient estimators side by side, against the exact gradient"};
  app.option_defaults()->always_capture_default();
  app.add_option("--latents", o.categorical.latents, "categorical latents L")
      ->check(CLI::Range(1, 8));
  app.add_option("--classes", o.categorical.classes, "classes per latent C")
      ->check(CLI::Range(2, 16));
  app.add_option("--target", o.categorical.target, "f(z) = (sum of chosen classes - target)^2");
  app.add_option("--bernoulli-latents", o.bernoulli.latents, "Bernoulli latents")
      ->check(CLI::Range(1, 16));
  app.add_option("--bernoulli-target", o.bernoulli.target,
                 "f(z) = (sum_l (1 + l / L) z_l - target)^2");
  app.add_option("--samples", o.samples, "gradient draws per estimator and temperature")
      ->check(CLI::Range(Index{2}, Index{1000000}));
  app.add_option("--steps", o.steps, "optimisation steps of each learning curve")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--lr", o.lr, "Adam's learning rate")->check(CLI::PositiveNumber);
  app.add_option("--tau", o.tau, "temperature of the Gumbel estimators' learning curves")
      ->check(CLI::PositiveNumber);
  app.add_option("--st-tau", o.st_tau,
                 "temperature of plain straight-through's and ReinMax's learning curves")
      ->check(CLI::PositiveNumber);
  app.add_option("--rao-samples", o.settings.rao_samples, "Gumbel-Rao's conditional draws M")
      ->check(CLI::Range(Index{1}, Index{1000}));
  app.add_option("--loo-samples", o.settings.loo_samples, "RLOO's samples S per draw")
      ->check(CLI::Range(Index{2}, Index{1000}));
  app.add_option("--seed", o.seed, "seed of the initial logits and of all noise");
  app.add_option("--out", o.out, "output folder");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  Index codes = 1;
  for (Index l = 0; l < o.categorical.latents; ++l) codes *= o.categorical.classes;
  if (codes > 1 << 16) {
    std::fprintf(stderr,
                 "--latents %ld --classes %ld: %ld codes are too many to enumerate "
                 "(at most 65536)\n",
                 long(o.categorical.latents), long(o.categorical.classes), long(codes));
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.out);
  std::ostringstream csv;
  csv << "problem,estimator,tau,bias,variance,mse,bias_noise\n";
  run(estimators::Categorical(o.categorical, o.settings), o, csv);
  run(estimators::Bernoulli(o.bernoulli, o.settings), o, csv);
  examples::write_file_atomic(o.out + "/estimators.csv", csv.str());
  std::printf("\nwrote %s/{categorical,bernoulli}_{bias,variance,curves}.svg, estimators.csv\n",
              o.out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "estimators: %s\n", e.what());
  return 1;
}
