// Small numeric helpers shared by the ops.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>

namespace gumbel::detail {

/// The argument below which e^x is subnormal: log of the smallest normal number.
template <class T>
inline const T kMinExpArg = std::log(std::numeric_limits<T>::min());

/// e^x, exactly 0 where the result would be subnormal (see exp_flush), NaN for NaN. A functor
/// with a packet path, because Eigen 3.4 evaluates `select` one scalar at a time: with it, every
/// exp here became a call to libm's expf. The flush tests x <= bound, which is false for NaN.
template <class T>
struct ExpFlushOp {
  T operator()(const T& x) const { return x <= kMinExpArg<T> ? T(0) : std::exp(x); }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    return pandnot(pexp(x), pcmp_le(x, pset1<Packet>(kMinExpArg<T>)));
  }
};

/// ln 2^k with k = digits of T: 2^k x is a normal number for every positive subnormal x.
template <class T>
inline const T kSubnormalLogShift = T(std::numeric_limits<T>::digits) * T(0.693147180559945309L);

/// ln x as std::log has it (correctly rounded to about an ulp) for every x, subnormals included.
/// Eigen's packet log clamps its argument to the smallest normal number (float ln(1e-40) came
/// out -87.3 instead of -92.1): subnormal lanes are scaled by 2^k into the normal range first and
/// k ln 2 is taken off the result. Zero, negatives, infinities and NaN keep Eigen's answers.
template <class T>
struct LogOp {
  T operator()(const T& x) const { return std::log(x); }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet subnormal =
        pand(pcmp_lt(pzero(x), x), pcmp_lt(x, pset1<Packet>(std::numeric_limits<T>::min())));
    const T scale = T(std::ldexp(1.0, std::numeric_limits<T>::digits));
    const Packet normal = pselect(subnormal, pmul(x, pset1<Packet>(scale)), x);
    return psub(plog(normal), pand(subnormal, pset1<Packet>(kSubnormalLogShift<T>)));
  }
};

/// 1 / (1 + e^-x) to a few ulp over the whole range: e = e^-|x|, then 1 / (1 + e) for x >= 0
/// and e / (1 + e) below, one division each (4 ulp at most in float against the correctly
/// rounded value, tested on a dense grid). Eigen 3.4's float logistic is a rational
/// approximation above -9 and a bare exp below, off by thousands of ulp between about -15 and
/// -2.7 and 0 where the result is subnormal; where e^x is subnormal (x below ln of the smallest
/// normal number) the lanes take e^x from libm, which is the logistic there (1 + e^x is 1).
/// The scalar form runs the packet form on one broadcast packet, so an element's value does not
/// depend on whether Eigen reaches it in a packet or in the scalar tail.
template <class T>
struct SigmoidOp {
  T operator()(const T& x) const {
    using Packet = typename Eigen::internal::packet_traits<T>::type;
    return Eigen::internal::pfirst(packetOp(Eigen::internal::pset1<Packet>(x)));
  }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet one = pset1<Packet>(T(1));
    const Packet e = pexp(pnegate(pabs(x)));
    const Packet y = pdiv(pselect(pcmp_le(pzero(x), x), one, e), padd(one, e));
    if (!predux_any(pcmp_lt(x, pset1<Packet>(kMinExpArg<T>)))) return y;
    constexpr int n = unpacket_traits<Packet>::size;
    alignas(64) T xs[std::size_t{n}];
    alignas(64) T ys[std::size_t{n}];
    pstore(xs, x);
    pstore(ys, y);
    for (int i = 0; i < n; ++i) {
      if (xs[i] < kMinExpArg<T>) ys[i] = std::exp(xs[i]);
    }
    return pload<Packet>(ys);
  }
};

/// max(x, 0), NaN for NaN (Eigen's max(x, 0) returns 0 for NaN on x86).
template <class T>
struct ReluOp {
  T operator()(const T& x) const { return x < T(0) ? T(0) : x; }
  template <class Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    return pandnot(x, pcmp_lt(x, pzero(x)));
  }
};

/// dy where v > 0, else 0 (relu's backward), vectorised for the same reason.
template <class T>
struct PassWherePositiveOp {
  T operator()(const T& v, const T& dy) const { return v > T(0) ? dy : T(0); }
  template <class Packet>
  Packet packetOp(const Packet& v, const Packet& dy) const {
    using namespace Eigen::internal;
    return pand(dy, pcmp_lt(pzero(v), v));
  }
};

/// a * b, but exactly 0 where a is 0 (as in q ln q with q = 0 and ln q = -inf, where the IEEE
/// product would be NaN).
template <class T>
struct TimesUnlessZeroOp {
  T operator()(const T& a, const T& b) const { return a == T(0) ? T(0) : a * b; }
  template <class Packet>
  Packet packetOp(const Packet& a, const Packet& b) const {
    using namespace Eigen::internal;
    return pandnot(pmul(a, b), pcmp_eq(a, pzero(a)));
  }
};

}  // namespace gumbel::detail

namespace Eigen::internal {
template <class T>
struct functor_traits<gumbel::detail::ExpFlushOp<T>> {
  enum {
    Cost = functor_traits<scalar_exp_op<T>>::Cost + 2,
    PacketAccess = packet_traits<T>::HasExp
  };
};
template <class T>
struct functor_traits<gumbel::detail::LogOp<T>> {
  enum {
    Cost = functor_traits<scalar_log_op<T>>::Cost + 4,
    PacketAccess = packet_traits<T>::HasLog
  };
};
template <class T>
struct functor_traits<gumbel::detail::SigmoidOp<T>> {
  enum {
    Cost = functor_traits<scalar_exp_op<T>>::Cost + 8,
    PacketAccess = packet_traits<T>::HasExp && packet_traits<T>::HasDiv
  };
};
template <class T>
struct functor_traits<gumbel::detail::ReluOp<T>> {
  enum { Cost = 2, PacketAccess = packet_traits<T>::Vectorizable };
};
template <class T>
struct functor_traits<gumbel::detail::PassWherePositiveOp<T>> {
  enum { Cost = 2, PacketAccess = packet_traits<T>::Vectorizable };
};
template <class T>
struct functor_traits<gumbel::detail::TimesUnlessZeroOp<T>> {
  enum { Cost = 3, PacketAccess = packet_traits<T>::Vectorizable };
};
}  // namespace Eigen::internal

namespace gumbel::detail {

/// e^x elementwise, exactly 0 where the result would be subnormal. Eigen's vectorised exp
/// clamps its argument and returns about 1e-308 for -inf in double, which would give a masked
/// class a probability that is not 0.
template <class ArrayExpr>
auto exp_flush(const ArrayExpr& x) {
  return x.unaryExpr(ExpFlushOp<typename ArrayExpr::Scalar>());
}

/// ln x elementwise, exact for subnormal x (see LogOp).
template <class ArrayExpr>
auto log_exact(const ArrayExpr& x) {
  return x.unaryExpr(LogOp<typename ArrayExpr::Scalar>());
}

/// The logistic function elementwise, to a few ulp everywhere (see SigmoidOp).
template <class ArrayExpr>
auto sigmoid_exact(const ArrayExpr& x) {
  return x.unaryExpr(SigmoidOp<typename ArrayExpr::Scalar>());
}

/// max(x, 0) elementwise, NaN for NaN.
template <class ArrayExpr>
auto relu_nan(const ArrayExpr& x) {
  return x.unaryExpr(ReluOp<typename ArrayExpr::Scalar>());
}

/// a * b elementwise, 0 where a is 0.
template <class A, class B>
auto times_unless_zero(const A& a, const B& b) {
  return a.binaryExpr(b, TimesUnlessZeroOp<typename A::Scalar>());
}

/// dy where v > 0, else 0.
template <class V, class D>
auto pass_where_positive(const V& v, const D& dy) {
  return v.binaryExpr(dy, PassWherePositiveOp<typename V::Scalar>());
}

}  // namespace gumbel::detail
