// Elementwise arithmetic: add, sub, mul, div (with broadcasting), scaling and shifting by a
// number, exp, log, square, sqrt, abs, pow, clamp, and the operators + - * / on variables.
//
// Broadcasting: an operand of shape 1xn (a row, e.g. a bias), mx1 (a column) or 1x1 (a scalar)
// is repeated to the other operand's shape; the gradient it receives is summed back.
#pragma once

#include <cmath>
#include <type_traits>

#include "gumbel/core/numeric.hpp"
#include "gumbel/core/parallel.hpp"
#include "gumbel/core/tape.hpp"

namespace gumbel {
namespace detail {

template <class T>
using NotDeduced = typename std::common_type<T>::type;

/// Rows of a row-major matrix's memory as a map: a share of a parallel loop may start at any
/// row, so these maps assume no alignment.
template <class T>
using RowsMap = Eigen::Map<Matrix<T>>;
template <class T>
using ConstRowsMap = Eigen::Map<const Matrix<T>>;

/// A node y = f(x) applied to every element; `grad(x, y, dy)` is the contribution to dx. Large
/// operands are shared among threads by rows, forward and backward (the same bits).
template <class T, class Forward, class Grad>
Var<T> unary(const char* op, const Var<T>& x, Forward forward, Grad grad) {
  Tape<T>& tape = tape_of(op, x);
  Var<T> y = tape.make(x.rows(), x.cols(), x.requires_grad(), op);
  const Index cols = x.cols();
  const T* xd = x.value().data();
  T* yd = y.value_mut().data();
  parallel_row_blocks(x.rows(), cols, [&](Index r0, Index n) {
    RowsMap<T>(yd + r0 * cols, n, cols).array() =
        forward(ConstRowsMap<T>(xd + r0 * cols, n, cols).array());
  });
  tape.on_backward(y, [x, y, grad] {
    const Index width = x.cols();
    const T* in = x.value().data();
    const T* out = y.value().data();
    const T* dout = y.grad().data();
    GradSink<T> sink = x.grad_sink();
    parallel_row_blocks(x.rows(), width, [&](Index r0, Index n) {
      const ConstRowsMap<T> xv(in + r0 * width, n, width);
      const ConstRowsMap<T> yv(out + r0 * width, n, width);
      const ConstRowsMap<T> dy(dout + r0 * width, n, width);
      sink.add_rows(r0, n, grad(xv.array(), yv.array(), dy.array()));
    });
  });
  return y;
}

/// How an operand of shape r x c is repeated to the output shape.
enum class Broadcast { none, row, col, scalar };

inline Broadcast broadcast_kind(Index r, Index c, Index rows, Index cols) {
  if (r == rows && c == cols) return Broadcast::none;
  if (r == 1 && c == 1) return Broadcast::scalar;
  if (r == 1 && c == cols) return Broadcast::row;
  return Broadcast::col;  // r == rows && c == 1, checked by the caller
}

inline bool broadcasts_to(Index r, Index c, Index rows, Index cols) {
  return (r == rows || r == 1) && (c == cols || c == 1);
}

/// The operand's values repeated to rows x cols (no copy when no repetition is needed).
template <class T>
const T* expand(Tape<T>& tape, const Var<T>& v, Broadcast kind, Index rows, Index cols) {
  const auto src = v.value();
  if (kind == Broadcast::none) return src.data();
  T* out = tape.scratch(rows * cols);
  MatrixMap<T> dst(out, rows, cols);
  switch (kind) {
    case Broadcast::scalar:
      dst.setConstant(src(0, 0));
      break;
    case Broadcast::row:
      dst = src.row(0).replicate(rows, 1);
      break;
    case Broadcast::col:
      dst = src.col(0).replicate(1, cols);
      break;
    case Broadcast::none:
      break;
  }
  return out;
}

/// Adds a full-shape gradient contribution into a repeated operand, summed over the repeated
/// axes (an operand of the full shape takes its contribution through its sink instead).
template <class T, class Contribution>
void accumulate_repeated(const Var<T>& v, Broadcast kind, const Contribution& g) {
  switch (kind) {
    case Broadcast::none:
      break;
    case Broadcast::row:
      v.grad_mut().array() += g.colwise().sum();
      break;
    case Broadcast::col:
      v.grad_mut().array() += g.rowwise().sum();
      break;
    case Broadcast::scalar:
      v.grad_mut()(0, 0) += g.sum();
      break;
  }
}

/// A node y = f(a, b) elementwise with broadcasting; `grad_a(a, b, y, dy)` and
/// `grad_b(a, b, y, dy)` are the full-shape contributions to da and db.
template <class T, class Forward, class GradA, class GradB>
Var<T> binary(const char* op, const Var<T>& a, const Var<T>& b, Forward forward, GradA grad_a,
              GradB grad_b) {
  Tape<T>& tape = tape_of(op, a, b);
  Index rows = a.rows();
  Index cols = a.cols();
  if (!broadcasts_to(b.rows(), b.cols(), rows, cols)) {
    if (!broadcasts_to(a.rows(), a.cols(), b.rows(), b.cols())) {
      fail<ShapeError>(op, "cannot broadcast ", shape_str(a.rows(), a.cols()), " with ",
                       shape_str(b.rows(), b.cols()),
                       " (shapes must match, or one must be 1xn, mx1 or 1x1 of the other)");
    }
    rows = b.rows();
    cols = b.cols();
  }
  const Broadcast kind_a = broadcast_kind(a.rows(), a.cols(), rows, cols);
  const Broadcast kind_b = broadcast_kind(b.rows(), b.cols(), rows, cols);
  const T* a_full = expand(tape, a, kind_a, rows, cols);
  const T* b_full = expand(tape, b, kind_b, rows, cols);

  Var<T> y = tape.make(rows, cols, any_requires_grad(a, b), op);
  T* yd = y.value_mut().data();
  parallel_row_blocks(rows, cols, [&](Index r0, Index n) {
    const ConstRowsMap<T> av(a_full + r0 * cols, n, cols);
    const ConstRowsMap<T> bv(b_full + r0 * cols, n, cols);
    RowsMap<T>(yd + r0 * cols, n, cols).array() = forward(av.array(), bv.array());
  });

  tape.on_backward(y, [=] {
    const T* yv = y.value().data();
    const T* dy = y.grad().data();
    // The contribution of rows [r0, r0 + n) to one operand, computed by `grad`.
    const auto contribution = [&](auto& grad, Index r0, Index n, auto&& use) {
      const ConstRowsMap<T> am(a_full + r0 * cols, n, cols);
      const ConstRowsMap<T> bm(b_full + r0 * cols, n, cols);
      const ConstRowsMap<T> ym(yv + r0 * cols, n, cols);
      const ConstRowsMap<T> dym(dy + r0 * cols, n, cols);
      use(grad(am.array(), bm.array(), ym.array(), dym.array()));
    };
    const auto send = [&](const Var<T>& v, Broadcast kind, auto& grad) {
      if (kind != Broadcast::none) {  // summed over the repeated axes, on this thread
        contribution(grad, 0, rows, [&](const auto& g) { accumulate_repeated(v, kind, g); });
        return;
      }
      GradSink<T> sink = v.grad_sink();  // full shape: the first writer assigns
      parallel_row_blocks(rows, cols, [&](Index r0, Index n) {
        contribution(grad, r0, n, [&](const auto& g) { sink.add_rows(r0, n, g); });
      });
    };
    if (a.requires_grad()) send(a, kind_a, grad_a);
    if (b.requires_grad()) send(b, kind_b, grad_b);
  });
  return y;
}

}  // namespace detail

/// A user-defined elementwise op y = f(x): `forward(x)` and `grad(x, y, dy)` (the contribution
/// to dx) take Eigen array expressions and must work element by element (a large operand is
/// passed as blocks of rows, one per thread); `name` is the op's name in error messages.
template <class T, class Forward, class Grad>
Var<T> elementwise(const char* name, const Var<T>& x, Forward forward, Grad grad) {
  return detail::unary(name, x, forward, grad);
}

/// The same with two operands, broadcast as in add: `grad_a(a, b, y, dy)` and
/// `grad_b(a, b, y, dy)` are the contributions to da and db.
template <class T, class Forward, class GradA, class GradB>
Var<T> elementwise(const char* name, const Var<T>& a, const Var<T>& b, Forward forward,
                   GradA grad_a, GradB grad_b) {
  return detail::binary(name, a, b, forward, grad_a, grad_b);
}

/// y = a + b ;  da += dy, db += dy
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return detail::binary(
      "add", a, b, [](const auto& x, const auto& z) { return x + z; },
      [](const auto&, const auto&, const auto&, const auto& dy) { return dy; },
      [](const auto&, const auto&, const auto&, const auto& dy) { return dy; });
}

/// y = a - b ;  da += dy, db -= dy
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return detail::binary(
      "sub", a, b, [](const auto& x, const auto& z) { return x - z; },
      [](const auto&, const auto&, const auto&, const auto& dy) { return dy; },
      [](const auto&, const auto&, const auto&, const auto& dy) { return -dy; });
}

/// y = a * b (elementwise) ;  da += dy * b, db += dy * a
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return detail::binary(
      "mul", a, b, [](const auto& x, const auto& z) { return x * z; },
      [](const auto&, const auto& z, const auto&, const auto& dy) { return dy * z; },
      [](const auto& x, const auto&, const auto&, const auto& dy) { return dy * x; });
}

/// y = a / b (elementwise) ;  da += dy / b, db -= dy * y / b
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return detail::binary(
      "div", a, b, [](const auto& x, const auto& z) { return x / z; },
      [](const auto&, const auto& z, const auto&, const auto& dy) { return dy / z; },
      [](const auto&, const auto& z, const auto& y, const auto& dy) { return -dy * y / z; });
}

/// y = s * x ;  dx += s * dy
template <class T>
Var<T> scale(const Var<T>& x, detail::NotDeduced<T> s) {
  return detail::unary(
      "scale", x, [s](const auto& v) { return v * s; },
      [s](const auto&, const auto&, const auto& dy) { return dy * s; });
}

/// y = x + s ;  dx += dy
template <class T>
Var<T> shift(const Var<T>& x, detail::NotDeduced<T> s) {
  return detail::unary(
      "shift", x, [s](const auto& v) { return v + s; },
      [](const auto&, const auto&, const auto& dy) { return dy; });
}

/// y = e^x ;  dx += dy * y
template <class T>
Var<T> exp(const Var<T>& x) {
  return detail::unary(
      "exp", x, [](const auto& v) { return detail::exp_flush(v); },
      [](const auto&, const auto& y, const auto& dy) { return dy * y; });
}

/// y = ln x ;  dx += dy / x
template <class T>
Var<T> log(const Var<T>& x) {
  return detail::unary(
      "log", x, [](const auto& v) { return detail::log_exact(v); },
      [](const auto& v, const auto&, const auto& dy) { return dy / v; });
}

/// y = x^2 ;  dx += 2 x dy
template <class T>
Var<T> square(const Var<T>& x) {
  return detail::unary(
      "square", x, [](const auto& v) { return v.square(); },
      [](const auto& v, const auto&, const auto& dy) { return T(2) * v * dy; });
}

/// y = sqrt(x) ;  dx += dy / (2 y)  (NaN for x < 0; +inf gradient at 0, as PyTorch)
template <class T>
Var<T> sqrt(const Var<T>& x) {
  return detail::unary(
      "sqrt", x, [](const auto& v) { return v.sqrt(); },
      [](const auto&, const auto& y, const auto& dy) { return dy / (T(2) * y); });
}

/// y = |x| ;  dx += dy sign(x)  (0 at x = 0, as PyTorch)
template <class T>
Var<T> abs(const Var<T>& x) {
  return detail::unary(
      "abs", x, [](const auto& v) { return v.abs(); },
      [](const auto& v, const auto&, const auto& dy) {
        return (v > T(0)).select(dy, (v < T(0)).select(-dy, T(0)));
      });
}

/// y = x^p for a number p ;  dx += dy p x^(p - 1)  (p = 0: y = 1 and no gradient, as PyTorch)
template <class T>
Var<T> pow(const Var<T>& x, detail::NotDeduced<T> p) {
  if (std::isnan(p)) detail::fail<ValueError>("pow", "the exponent is NaN");
  if (p == T(0)) {
    return detail::unary(
        "pow", x, [](const auto& v) { return v.pow(T(0)); },
        [](const auto&, const auto&, const auto& dy) { return dy * T(0); });
  }
  // std::pow element by element: IEEE's signs for odd integer exponents (pow(-inf, 3) = -inf,
  // pow(-0, -1) = -inf), which Eigen 3.4's packet pow for double loses in some lanes.
  const auto power = [](T q) { return [q](T v) { return std::pow(v, q); }; };
  return detail::unary(
      "pow", x, [power, p](const auto& v) { return v.unaryExpr(power(p)); },
      [power, p](const auto& v, const auto&, const auto& dy) {
        return dy * p * v.unaryExpr(power(p - T(1)));
      });
}

/// y = min(max(x, lo), hi) ;  dx += dy where lo <= x <= hi (PyTorch's rule); NaN stays NaN
template <class T>
Var<T> clamp(const Var<T>& x, detail::NotDeduced<T> lo, detail::NotDeduced<T> hi) {
  if (!(lo <= hi)) {
    detail::fail<ValueError>("clamp", "lo = ", lo, " must not exceed hi = ", hi, " (nor be NaN)");
  }
  return detail::unary(
      "clamp", x, [lo, hi](const auto& v) { return (v < lo).select(lo, (v > hi).select(hi, v)); },
      [lo, hi](const auto& v, const auto&, const auto& dy) {
        return ((v >= lo) && (v <= hi)).select(dy, T(0));
      });
}

template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return add(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return sub(a, b);
}
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return div(a, b);
}
// No operator* between two variables: it would be unclear whether it means matmul or mul.
template <class T>
Var<T> operator-(const Var<T>& x) {
  return scale(x, T(-1));
}
template <class T>
Var<T> operator*(const Var<T>& x, detail::NotDeduced<T> s) {
  return scale(x, s);
}
template <class T>
Var<T> operator*(detail::NotDeduced<T> s, const Var<T>& x) {
  return scale(x, s);
}
template <class T>
Var<T> operator/(const Var<T>& x, detail::NotDeduced<T> s) {
  return scale(x, T(1) / s);
}
template <class T>
Var<T> operator+(const Var<T>& x, detail::NotDeduced<T> s) {
  return shift(x, s);
}
template <class T>
Var<T> operator+(detail::NotDeduced<T> s, const Var<T>& x) {
  return shift(x, s);
}
template <class T>
Var<T> operator-(const Var<T>& x, detail::NotDeduced<T> s) {
  return shift(x, -s);
}
template <class T>
Var<T> operator-(detail::NotDeduced<T> s, const Var<T>& x) {
  return shift(scale(x, T(-1)), s);
}

}  // namespace gumbel
