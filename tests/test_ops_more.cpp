// The ops users ask for first: sqrt, abs, pow, clamp, softplus, logsumexp, concat, slice, where,
// embedding, detach, dropout, and NoGradGuard. Values against Eigen in float and double,
// gradients against finite differences in double, errors naming the op and the shapes.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "test_util.hpp"

using namespace gumbel;
using test::Inputs;
using test::Md;
using test::message_of;
using test::require_gradients;

namespace {
using Mask = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

TEST_CASE_TEMPLATE("elementwise ops match their definitions in float and double", T, float,
                   double) {
  const Matrix<T> x = test::normal(6, 5, 1, 3.0).cast<T>();
  const Matrix<T> pos = test::uniform(6, 5, 2, 0.1, 4.0).cast<T>();
  Tape<T> tape;
  const auto eps = T(std::is_same_v<T, float> ? 1e-6 : 1e-14);
  const auto close = [&](const Matrix<T>& a, const Matrix<T>& b) {
    return ((a - b).array().abs() <= eps * (T(1) + b.array().abs())).all();
  };
  CHECK(close(sqrt(tape.constant(pos)).value(), pos.array().sqrt().matrix()));
  CHECK(close(abs(tape.constant(x)).value(), x.array().abs().matrix()));
  CHECK(close(pow(tape.constant(pos), T(2.5)).value(), pos.array().pow(T(2.5)).matrix()));
  CHECK(close(pow(tape.constant(x), T(0)).value(), Matrix<T>::Ones(6, 5)));
  CHECK(
      close(clamp(tape.constant(x), T(-1), T(2)).value(), x.array().max(T(-1)).min(T(2)).matrix()));
  const Matrix<T> sp = (T(1) + x.array().exp()).log().matrix();
  CHECK(close(softplus(tape.constant(x)).value(), sp));
  Matrix<T> huge(1, 3);
  huge << T(1e30), T(-1e30), -std::numeric_limits<T>::infinity();
  const Matrix<T> sph = softplus(tape.constant(huge)).value();
  CHECK(sph(0, 0) == T(1e30));
  CHECK(sph(0, 1) == T(0));
  CHECK(sph(0, 2) == T(0));
  Matrix<T> nan = x;
  nan(2, 3) = std::numeric_limits<T>::quiet_NaN();
  CHECK(std::isnan(clamp(tape.constant(nan), T(-1), T(1)).value()(2, 3)));
  CHECK(std::isnan(softplus(tape.constant(nan)).value()(2, 3)));
  CHECK(std::isnan(abs(tape.constant(nan)).value()(2, 3)));
}

TEST_CASE("gradients of sqrt, abs, pow, clamp and softplus") {
  const Md pos = test::uniform(5, 4, 3, 0.2, 3.0);
  const Md x = test::normal(5, 4, 4, 2.0);
  Md away = x;  // abs and clamp away from their kinks
  for (Index i = 0; i < away.size(); ++i) {
    double& v = away.data()[i];
    if (std::abs(v) < 0.01) v = 0.5;
    if (std::abs(v - 1.0) < 0.01 || std::abs(v + 0.5) < 0.01) v += 0.1;
  }
  require_gradients([](Tape<double>&, const Inputs& v) { return sqrt(v[0]); }, {pos});
  require_gradients([](Tape<double>&, const Inputs& v) { return abs(v[0]); }, {away});
  for (const double p : {3.0, 0.5, -1.5, 1.0}) {
    require_gradients([p](Tape<double>&, const Inputs& v) { return pow(v[0], p); }, {pos});
  }
  require_gradients([](Tape<double>&, const Inputs& v) { return pow(v[0], 2.0); }, {x});
  require_gradients([](Tape<double>&, const Inputs& v) { return clamp(v[0], -0.5, 1.0); }, {away});
  require_gradients([](Tape<double>&, const Inputs& v) { return softplus(v[0]); },
                    {test::normal(5, 4, 5, 8.0)});
  // abs at 0, pow with p = 0 and clamp at its bounds: PyTorch's conventions.
  Tape<double> tape;
  const Var<double> z = tape.variable(Md{{0.0, -1.0, 2.0, -0.5}});
  tape.backward(sum(abs(z)) + sum(pow(z, 0.0)) + sum(clamp(z, -0.5, 2.0)));
  CHECK(z.grad() == Md{{0.0 + 0 + 1, -1.0 + 0 + 0, 1.0 + 0 + 1, -1.0 + 0 + 1}});
}

TEST_CASE("logsumexp: values, masked and degenerate rows, gradients") {
  Md x = test::normal(5, 6, 6, 3.0);
  x(1, 2) = -INFINITY;
  x(2, 0) = 800;  // exp would overflow without the shift
  Tape<double> tape;
  const Md y = logsumexp(tape.constant(x)).value();
  for (Index i = 0; i < x.rows(); ++i) {
    const double m = x.row(i).maxCoeff();
    CHECK(y(i, 0) == doctest::Approx(m + std::log((x.row(i).array() - m).exp().sum())));
  }
  require_gradients([](Tape<double>&, const Inputs& v) { return logsumexp(v[0]); }, {x});
  const Var<double> odd = tape.variable(Md{{-INFINITY, -INFINITY}, {INFINITY, 1.0}, {NAN, 1.0}});
  const Var<double> l = logsumexp(odd);
  CHECK(l.value()(0, 0) == -INFINITY);
  CHECK(l.value()(1, 0) == INFINITY);
  CHECK(std::isnan(l.value()(2, 0)));
  tape.backward(sum(slice_rows(l, 0, 1)));
  CHECK(odd.grad().row(0).isZero());
  Tape<float> tf;
  const Matrix<float> xf = x.cast<float>();
  CHECK((logsumexp(tf.constant(xf)).value().cast<double>() - y).cwiseAbs().maxCoeff() < 1e-4);
}

TEST_CASE_TEMPLATE("concat and slice: values in float and double", T, float, double) {
  const Matrix<T> a = test::normal(3, 4, 7).cast<T>();
  const Matrix<T> b = test::normal(2, 4, 8).cast<T>();
  const Matrix<T> c = test::normal(3, 2, 9).cast<T>();
  Tape<T> tape;
  Matrix<T> rows(5, 4), cols(3, 6);
  rows << a, b;
  cols << a, c;
  CHECK(concat_rows(tape.constant(a), tape.constant(b)).value() == rows);
  CHECK(concat_cols(tape.constant(a), tape.constant(c)).value() == cols);
  CHECK(slice_rows(tape.constant(rows), 1, 3).value() == rows.middleRows(1, 3));
  CHECK(slice_cols(tape.constant(cols), 4, 2).value() == c);
  CHECK(slice_rows(tape.constant(rows), 5, 0).value().size() == 0);
}

TEST_CASE("gradients of concat, slice, where, embedding and detach") {
  const Md a = test::normal(3, 4, 10), b = test::normal(2, 4, 11), c = test::normal(3, 2, 12);
  require_gradients([](Tape<double>&, const Inputs& v) { return concat_rows(v[0], v[1]); }, {a, b});
  require_gradients([](Tape<double>&, const Inputs& v) { return concat_cols(v[0], v[1]); }, {a, c});
  require_gradients([](Tape<double>&, const Inputs& v) { return slice_rows(v[0], 1, 2); }, {a});
  require_gradients([](Tape<double>&, const Inputs& v) { return slice_cols(v[0], 1, 2); }, {a});
  // A slice used twice and the whole: the gradient adds up.
  require_gradients(
      [](Tape<double>&, const Inputs& v) {
        return concat_rows(slice_rows(v[0], 0, 2), slice_rows(v[0], 1, 2)) + slice_rows(v[0], 0, 4);
      },
      {test::normal(5, 3, 13)});

  Mask mask(3, 4);
  mask << true, false, true, true, false, false, true, false, true, true, false, true;
  require_gradients([mask](Tape<double>&, const Inputs& v) { return where(mask, v[0], v[1]); },
                    {a, test::normal(3, 4, 14)});
  require_gradients([mask](Tape<double>&, const Inputs& v) { return where(mask, v[0], v[1]); },
                    {a, test::normal(1, 4, 15)});  // b broadcast by rows
  Tape<double> tape;
  const Md w = where(mask, tape.constant(a), tape.constant(Md::Zero(3, 4))).value();
  CHECK(w == mask.select(a.array(), 0.0).matrix());

  IndexVector idx(5);
  idx << 2, 0, 2, 3, 2;  // row 2 three times
  require_gradients([idx](Tape<double>&, const Inputs& v) { return embedding(v[0], idx); },
                    {test::normal(4, 3, 16)});
  const Md table = test::normal(4, 3, 16);
  const Md e = embedding(tape.constant(table), idx).value();
  for (Index i = 0; i < 5; ++i) CHECK(e.row(i) == table.row(idx(i)));

  const Var<double> x = tape.variable(a);
  tape.backward(sum(mul(detach(x), x)));  // d/dx of sum(c * x) with c = x held fixed is c
  CHECK(x.grad() == a);
}

TEST_CASE("dropout: the kept fraction, the scaling, reproducible masks, its gradient") {
  Tape<double> tape;
  const Md ones = Md::Ones(400, 250);
  const Var<double> x = tape.variable(ones);
  Generator g1(3), g2(3);
  const Var<double> y = nn::dropout(x, 0.3, g1, true);
  const double kept = double((y.value().array() != 0).count()) / double(ones.size());
  const double se = std::sqrt(0.7 * 0.3 / double(ones.size()));
  CHECK(std::abs(kept - 0.7) < 5 * se);
  CHECK(((y.value().array() == 0) || (y.value().array() == 1 / 0.7)).all());
  CHECK(nn::dropout(x, 0.3, g2, true).value() == y.value());
  tape.backward(sum(y));
  CHECK(x.grad() == y.value());  // dy = 1: dx = m / (1 - p)
  CHECK(nn::dropout(x, 0.3, g1, false).value() == ones);
  CHECK(nn::dropout(x, 1.0, g1, true).value().isZero());
  CHECK(message_of<ValueError>([&] {
          nn::dropout(x, 1.5, g1, true);
        }).find("nn::dropout: p = 1.5 must lie in [0, 1]") != std::string::npos);
}

TEST_CASE("NoGradGuard turns gradients off for its scope only") {
  Tape<double> tape;
  const Var<double> x = tape.variable(Md::Ones(2, 2));
  {
    const NoGradGuard<double> guard(tape);
    CHECK(!tape.grad_enabled());
    CHECK(!(x * 2.0).requires_grad());
    { const NoGradGuard<double> nested(tape); }
    CHECK(!tape.grad_enabled());
  }
  CHECK(tape.grad_enabled());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("the new ops' errors name the op and the shapes") {
  Tape<double> tape;
  const Var<double> a = tape.constant(Md::Zero(3, 4));
  const Var<double> b = tape.constant(Md::Zero(2, 5));
  CHECK(message_of<ShapeError>([&] {
          concat_rows(a, b);
        }).find("concat_rows: cannot join 3x4 and 2x5 by rows") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          concat_cols(a, b);
        }).find("concat_cols: cannot join 3x4 and 2x5 by columns") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          slice_rows(a, 2, 2);
        }).find("slice_rows: [2, 2 + 2) is outside the rows of 3x4") != std::string::npos);
  CHECK(message_of<ShapeError>([&] { slice_cols(a, -1, 2); }).find("slice_cols") !=
        std::string::npos);
  CHECK(message_of<ValueError>([&] {
          clamp(a, 1.0, 0.0);
        }).find("clamp: lo = 1 must not exceed hi = 0") != std::string::npos);
  CHECK(message_of<ValueError>([&] { pow(a, NAN); }).find("pow: the exponent is NaN") !=
        std::string::npos);
  IndexVector idx(2);
  idx << 1, 3;
  CHECK(message_of<ValueError>([&] {
          embedding(a, idx);
        }).find("embedding: index 3 at position 1 is outside [0, 3)") != std::string::npos);
  CHECK(message_of<ShapeError>([&] {
          where(Mask::Constant(2, 2, true), a, a);
        }).find("where: condition 2x2 for operands 3x4 and 3x4") != std::string::npos);
  CHECK_THROWS_AS(logsumexp(tape.constant(Md::Zero(2, 0))), ShapeError);
}

TEST_CASE("concat of empty operands whose joined side passes an index's range is an error") {
  Tape<double> tape;
  const Index huge = Index(1) << 62;
  const Var<double> tall = tape.constant(Md(huge, 0));
  const Var<double> wide = tape.constant(Md(0, huge));
  CHECK(message_of<ShapeError>([&] { concat_rows(tall, tall); })
            .find("concat_rows: joining 4611686018427387904x0 and 4611686018427387904x0 has more "
                  "rows than an index can count") != std::string::npos);
  CHECK(message_of<ShapeError>([&] { concat_cols(wide, wide); }).find("concat_cols: joining") !=
        std::string::npos);
  const Var<double> joined = concat_rows(tall, tape.constant(Md(huge - 1, 0)));
  CHECK(joined.rows() == huge + (huge - 1));
}

TEST_CASE_TEMPLATE("pow keeps IEEE's signs for odd integer exponents in every lane", T, float,
                   double) {
  const T inf = std::numeric_limits<T>::infinity();
  Tape<T> tape;
  // Each special value at every position of a 19-element row: packet lanes and scalar tails.
  for (const T p : {T(3), T(-1), T(2), T(-3), T(0.5), T(1.5)}) {
    for (const T x : {-inf, T(-0.0), T(0.0), inf, T(-2.5), T(-1e-30)}) {
      for (Index at = 0; at < 19; ++at) {
        Matrix<T> m = Matrix<T>::Constant(1, 19, T(1.25));
        m(0, at) = x;
        const T y = pow(tape.constant(m), p).value()(0, at);
        const T want = std::pow(x, p);
        INFO("pow(" << x << ", " << p << ") at " << at << " = " << y << ", std::pow " << want);
        CHECK((std::isnan(want) ? std::isnan(y) : y == want));
        if (!std::isnan(want)) CHECK(std::signbit(y) == std::signbit(want));
      }
    }
  }
}
