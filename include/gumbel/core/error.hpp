// Errors raised by gumbel. Every check runs in Release builds too: a wrong shape must never
// reach Eigen, whose asserts vanish under NDEBUG.
#pragma once

#include <Eigen/Core>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace gumbel {

/// Base of every exception the library throws on bad input.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Operand shapes that an op cannot combine.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// Misuse of a tape: a variable from a cleared or foreign tape, backward on a non-scalar.
class TapeError : public Error {
 public:
  using Error::Error;
};

/// A hyper-parameter or argument outside its valid range.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// "3x4": the way every message prints a shape.
inline std::string shape_str(Eigen::Index rows, Eigen::Index cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

namespace detail {

/// Builds "gumbel::op: parts..." from streamable pieces.
template <class... Parts>
std::string message(const char* op, Parts&&... parts) {
  std::ostringstream out;
  out << "gumbel::" << op << ": ";
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <class E = ValueError, class... Parts>
[[noreturn]] void fail(const char* op, Parts&&... parts) {
  throw E(message(op, std::forward<Parts>(parts)...));
}

}  // namespace detail

/// For writing ops: throws E ("gumbel::<op>: " and the streamed parts), e.g.
/// fail<ShapeError>("myop", "got ", shape_str(r, c)).
using detail::fail;

}  // namespace gumbel
