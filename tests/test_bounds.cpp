// categorical_bounds against exact values by enumeration on models small enough to list every
// code: 2 latents of 3 classes (9 codes).
#include <doctest/doctest.h>

#include <cmath>

#include "test_util.hpp"

namespace {

using gumbel::Index;
using gumbel::IndexVector;

constexpr Index kLatents = 2;
constexpr Index kClasses = 3;

/// log p(x|z) of one example for the 9 codes z = (z0, z1): a table that does not factorise.
const double kTable[3][3] = {{-1.0, -3.0, -0.5}, {-2.0, -0.1, -4.0}, {-6.0, -1.5, -2.5}};

/// The class of latent n in a one-hot code row.
template <class Row>
Index class_of(const Row& row, Index n) {
  Index z = 0;
  row.segment(n * kClasses, kClasses).maxCoeff(&z);
  return z;
}

/// The likelihood callable over the table (the same x for every example).
struct TableLikelihood {
  Index calls = 0;
  Eigen::VectorXd operator()(const gumbel::Matrix<double>& codes, const IndexVector& example) {
    ++calls;
    REQUIRE(example.size() == codes.rows());
    Eigen::VectorXd out(codes.rows());
    for (Index r = 0; r < codes.rows(); ++r) {
      REQUIRE(codes.row(r).sum() == doctest::Approx(double(kLatents)));
      out(r) = kTable[class_of(codes.row(r), 0)][class_of(codes.row(r), 1)];
    }
    return out;
  }
};

struct Exact {
  double log_px;     ///< log sum_z p(x|z) p(z)
  double elbo;       ///< E_q[log p(x|z)] - KL
  double kl;         ///< KL(q || p)
  double sd_ll;      ///< standard deviation of log p(x|z) under q
  double sd_logw;    ///< standard deviation of log w = log p(x|z) + log p(z) - log q(z)
  double var_ratio;  ///< variance of w / p(x) under q
};

/// Everything by enumeration for one example's logits (2 x 3) and a prior over the 3 classes.
Exact enumerate(const gumbel::Matrix<double>& logits, const Eigen::Vector3d& log_prior,
                const double (&table)[3][3] = kTable) {
  Eigen::Matrix<double, 2, 3> lq;
  for (Index n = 0; n < 2; ++n) {
    const double lse = std::log(logits.row(n).array().exp().sum());
    lq.row(n) = logits.row(n).array() - lse;
  }
  double px = 0, ell = 0, ell2 = 0, lw = 0, lw2 = 0;
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      const double q = std::exp(lq(0, a) + lq(1, b));
      const double log_pz = log_prior(a) + log_prior(b);
      px += std::exp(table[a][b] + log_pz);
      ell += q * table[a][b];
      ell2 += q * table[a][b] * table[a][b];
      const double w = table[a][b] + log_pz - lq(0, a) - lq(1, b);
      lw += q * w;
      lw2 += q * w * w;
    }
  }
  Exact e{};
  e.log_px = std::log(px);
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 3; ++c) e.kl += std::exp(lq(n, c)) * (lq(n, c) - log_prior(c));
  }
  e.elbo = ell - e.kl;
  e.sd_ll = std::sqrt(ell2 - ell * ell);
  e.sd_logw = std::sqrt(lw2 - lw * lw);
  double r2 = 0;
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) {
      const double q = std::exp(lq(0, a) + lq(1, b));
      const double w = std::exp(table[a][b] + log_prior(a) + log_prior(b) - e.log_px) / q;
      r2 += q * w * w;
    }
  }
  e.var_ratio = r2 - 1;
  return e;
}

/// The same example's logits repeated `copies` times (rows b N .. b N + 1).
gumbel::Matrix<double> repeated(const gumbel::Matrix<double>& one, Index copies) {
  return one.replicate(copies, 1);
}

gumbel::Matrix<double> example_logits() {
  gumbel::Matrix<double> l(2, 3);
  l << 0.3, -0.8, 1.1, -0.2, 0.9, 0.0;
  return l;
}

const Eigen::Vector3d kUniform = Eigen::Vector3d::Constant(-std::log(3.0));

}  // namespace

TEST_CASE("categorical_bounds: the ELBO estimate is unbiased and m = 1 gives E[iw] = ELBO") {
  const auto one = example_logits();
  const Exact exact = enumerate(one, kUniform);
  REQUIRE(exact.log_px - exact.elbo > 0.3);  // the bounds below must be told apart
  const Index copies = 20000;
  gumbel::Generator gen(11);
  TableLikelihood f;
  const auto bounds = gumbel::categorical_bounds(repeated(one, copies), kLatents, gen, f);
  // The KL is exact for every example.
  CHECK(bounds.kl.minCoeff() == doctest::Approx(exact.kl).epsilon(1e-12));
  CHECK(bounds.kl.maxCoeff() == doctest::Approx(exact.kl).epsilon(1e-12));
  const double se_ll = exact.sd_ll / std::sqrt(double(copies));
  const double se_w = exact.sd_logw / std::sqrt(double(copies));
  INFO("mean ELBO " << bounds.elbo.mean() << ", exact " << exact.elbo << ", se " << se_ll);
  CHECK(std::abs(bounds.elbo.mean() - exact.elbo) < 5 * se_ll);
  INFO("mean iw(m=1) " << bounds.iw.mean() << ", se " << se_w);
  CHECK(std::abs(bounds.iw.mean() - exact.elbo) < 5 * se_w);
}

TEST_CASE("categorical_bounds: the importance-weighted bound rises with m towards log p(x)") {
  const auto one = example_logits();
  const Exact exact = enumerate(one, kUniform);
  const Index copies = 2000;
  double previous = -INFINITY;
  for (const Index m : {Index{1}, Index{4}, Index{32}}) {
    gumbel::Generator gen(100 + std::uint64_t(m));
    gumbel::BoundOptions options;
    options.samples = m;
    TableLikelihood f;
    const auto b = gumbel::categorical_bounds(repeated(one, copies), kLatents, gen, f, options);
    const double mean = b.iw.mean();
    const double se = std::sqrt((b.iw.array() - mean).square().sum() / double(copies - 1)) /
                      std::sqrt(double(copies));
    // The delta method: E[iw_m] ~ log p(x) - Var(w / p(x)) / (2 m) for m large enough.
    INFO("m = " << m << ": mean " << mean << " se " << se << ", log p(x) " << exact.log_px
                << ", ELBO " << exact.elbo);
    CHECK(mean > previous + 5 * se);      // strictly higher than with fewer samples
    CHECK(mean < exact.log_px + 5 * se);  // and still a lower bound in expectation
    if (m == 32) {
      CHECK(std::abs(mean - (exact.log_px - exact.var_ratio / (2.0 * double(m)))) <
            5 * se + exact.var_ratio / (2.0 * double(m)) * 0.5);
    }
    previous = mean;
  }
  // Large m: within Monte Carlo error of log p(x), sd ~ sqrt(Var(w/p) / m).
  const Index m = 200000;
  gumbel::Generator gen(7);
  gumbel::BoundOptions options;
  options.samples = m;
  TableLikelihood f;
  const auto b = gumbel::categorical_bounds(one, kLatents, gen, f, options);
  const double sd = std::sqrt(exact.var_ratio / double(m));
  INFO("iw " << b.iw(0) << ", log p(x) " << exact.log_px << ", sd " << sd);
  CHECK(std::abs(b.iw(0) - exact.log_px) < 5 * sd + exact.var_ratio / double(m));
  CHECK(f.calls == (m + 8191) / 8192);  // max_rows codes per call
}

TEST_CASE("categorical_bounds: with q the exact posterior every weight is p(x), for any prior") {
  // A likelihood that factorises over the latents, log p(x|z) = g0(z0) + g1(z1), has the
  // posterior q_n(k) ~ p(k) exp(g_n(k)); then p(x|z) p(z) / q(z|x) = p(x) for every code.
  const double g[2][3] = {{-0.7, -2.0, -0.2}, {-1.3, -0.4, -3.1}};
  double table[3][3];
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) table[a][b] = g[0][a] + g[1][b];
  }
  Eigen::VectorXd prior(3);
  prior << 0.0, 1.0, 2.5;  // unnormalised: categorical_bounds normalises it
  Eigen::Vector3d log_prior = prior.array() - std::log(prior.array().exp().sum());
  gumbel::Matrix<double> logits(2, 3);
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 3; ++c) logits(n, c) = log_prior(c) + g[n][c];
  }
  const Exact exact = enumerate(logits, log_prior, table);
  gumbel::BoundOptions options;
  options.samples = 50;
  options.prior_log_probs = prior;
  gumbel::Generator gen(3);
  const auto f = [&](const gumbel::Matrix<double>& codes, const IndexVector&) {
    Eigen::VectorXd out(codes.rows());
    for (Index r = 0; r < codes.rows(); ++r) {
      out(r) = table[class_of(codes.row(r), 0)][class_of(codes.row(r), 1)];
    }
    return out;
  };
  const auto b = gumbel::categorical_bounds(logits.replicate(4, 1), kLatents, gen, f, options);
  for (Index e = 0; e < 4; ++e) {
    CHECK(b.iw(e) == doctest::Approx(exact.log_px).epsilon(1e-12));
    CHECK(b.kl(e) == doctest::Approx(exact.kl).epsilon(1e-12));
  }
}

TEST_CASE_TEMPLATE("categorical_bounds: the codes do not depend on max_rows or threads", T, float,
                   double) {
  gumbel::Generator init(5);
  const gumbel::Matrix<T> logits = init.normal<T>(6 * 4, 5, T(0), T(2));  // 6 examples, N = 4
  // A likelihood that sees every code: a fixed weight per (example, latent, class).
  const Eigen::MatrixXd weight = test::normal(6, 20, 9);
  const auto f = [&](const gumbel::Matrix<T>& codes, const IndexVector& example) {
    Eigen::VectorXd out(codes.rows());
    for (Index r = 0; r < codes.rows(); ++r) {
      out(r) = weight.row(example(r)).dot(codes.row(r).template cast<double>());
    }
    return out;
  };
  gumbel::CategoricalBounds reference;
  std::uint64_t offset_after = 0;
  for (const Index max_rows : {Index{8192}, Index{1}, Index{7}, Index{40}}) {
    for (const int threads : {1, 2}) {
      gumbel::set_threads(threads);
      gumbel::Generator gen(77);
      gumbel::BoundOptions options;
      options.samples = 10;
      options.max_rows = max_rows;
      const auto b = gumbel::categorical_bounds(logits, 4, gen, f, options);
      if (reference.iw.size() == 0) {
        reference = b;
        offset_after = gen.offset();
        continue;
      }
      CHECK(gen.offset() == offset_after);
      CHECK(b.iw == reference.iw);
      CHECK(b.elbo == reference.elbo);
    }
  }
  gumbel::set_threads(1);
  // The generator moved on: a second call draws other codes.
  gumbel::Generator gen(77);
  gumbel::BoundOptions options;
  options.samples = 10;
  gumbel::categorical_bounds(logits, 4, gen, f, options);
  const auto again = gumbel::categorical_bounds(logits, 4, gen, f, options);
  CHECK(again.reconstruction != reference.reconstruction);
}

TEST_CASE("categorical_bounds: codes are exact categorical samples (chi-square)") {
  // Example 0's latent 0 has probabilities softmax(l); count its classes over m codes.
  gumbel::Matrix<double> logits(1, 4);
  logits << 1.5, -0.5, 0.2, 0.0;
  const Eigen::Array4d p = logits.row(0).array().exp() / logits.row(0).array().exp().sum();
  Eigen::Array4d count = Eigen::Array4d::Zero();
  const auto f = [&](const gumbel::Matrix<double>& codes, const IndexVector&) {
    for (Index r = 0; r < codes.rows(); ++r) count += codes.row(r).transpose().array();
    return Eigen::VectorXd::Zero(codes.rows()).eval();
  };
  gumbel::BoundOptions options;
  options.samples = 100000;
  gumbel::Generator gen(21);
  gumbel::categorical_bounds(logits, 1, gen, f, options);
  const double chi2 =
      ((count - p * double(options.samples)).square() / (p * double(options.samples))).sum();
  CHECK(chi2 < 21.1);  // chi-square with 3 degrees of freedom: p-value 1e-4
}

TEST_CASE("categorical_bounds: bad arguments name the op and the values; NaN propagates") {
  const auto logits = example_logits();
  gumbel::Generator gen(1);
  TableLikelihood f;
  gumbel::BoundOptions options;
  options.samples = 0;
  const auto zero_m = test::message_of<gumbel::ValueError>(
      [&] { gumbel::categorical_bounds(logits, kLatents, gen, f, options); });
  CHECK(zero_m.find("categorical_bounds") != std::string::npos);
  CHECK(zero_m.find("samples m = 0") != std::string::npos);

  const auto rows =
      test::message_of<gumbel::ShapeError>([&] { gumbel::categorical_bounds(logits, 3, gen, f); });
  CHECK(rows.find("2x3") != std::string::npos);
  CHECK(rows.find("3 latents") != std::string::npos);

  options.samples = 1;
  options.prior_log_probs = Eigen::VectorXd::Zero(4);
  const auto prior = test::message_of<gumbel::ShapeError>(
      [&] { gumbel::categorical_bounds(logits, kLatents, gen, f, options); });
  CHECK(prior.find("4 entries for logits of 3 classes") != std::string::npos);

  const auto short_result = [](const gumbel::Matrix<double>& codes, const IndexVector&) {
    return Eigen::VectorXd::Zero(codes.rows() - 1).eval();
  };
  const auto wrong_size = test::message_of<gumbel::ShapeError>(
      [&] { gumbel::categorical_bounds(logits, kLatents, gen, short_result); });
  CHECK(wrong_size.find("returned 0 values for 1 codes") != std::string::npos);

  auto nan_logits = logits;
  nan_logits(1, 2) = NAN;
  const auto nan = test::message_of<gumbel::ValueError>(
      [&] { gumbel::categorical_bounds(nan_logits, kLatents, gen, f); });
  CHECK(nan.find("row 1 contains +inf or NaN") != std::string::npos);

  const auto nan_likelihood = [](const gumbel::Matrix<double>& codes, const IndexVector&) {
    Eigen::VectorXd out = Eigen::VectorXd::Zero(codes.rows());
    out(0) = NAN;
    return out;
  };
  options.prior_log_probs.resize(0);
  options.samples = 3;
  const auto b = gumbel::categorical_bounds(logits, kLatents, gen, nan_likelihood, options);
  CHECK(std::isnan(b.iw(0)));
  CHECK(std::isnan(b.elbo(0)));
}
