// Every error path: the exception type and a message naming the op and the shapes.
#include "test_util.hpp"

using namespace gumbel;
using namespace test;

namespace {

template <class F>
void check_shape_error(F&& f, std::initializer_list<const char*> fragments) {
  const std::string msg = message_of<ShapeError>(f);
  INFO(msg);
  REQUIRE_FALSE(msg.empty());
  for (const char* fragment : fragments) CHECK(msg.find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("errors derive from std::invalid_argument") {
  static_assert(std::is_base_of_v<std::invalid_argument, ShapeError>);
  static_assert(std::is_base_of_v<std::invalid_argument, TapeError>);
  static_assert(std::is_base_of_v<std::invalid_argument, ValueError>);
}

TEST_CASE("mismatched shapes name the op and both shapes") {
  Tape<double> tape;
  const auto a = tape.constant(Md::Zero(3, 4));
  const auto b = tape.constant(Md::Zero(5, 2));
  const auto c = tape.constant(Md::Zero(2, 3));
  check_shape_error([&] { matmul(a, b); }, {"gumbel::matmul", "3x4", "5x2"});
  check_shape_error([&] { a + b; }, {"gumbel::add", "3x4", "5x2"});
  check_shape_error([&] { a - c; }, {"gumbel::sub", "3x4", "2x3"});
  check_shape_error([&] { mul(a, c); }, {"gumbel::mul", "3x4", "2x3"});
  check_shape_error([&] { a / tape.constant(Md::Ones(1, 3)); }, {"gumbel::div", "3x4", "1x3"});
  check_shape_error([&] { linear(a, b, tape.constant(Md::Zero(1, 5))); },
                    {"gumbel::linear", "3x4", "5x2"});
  check_shape_error([&] { linear(a, tape.constant(Md::Zero(2, 4)), c); },
                    {"gumbel::linear", "1x2", "2x3", "2x4"});
  check_shape_error([&] { reshape(a, 5, 2); }, {"gumbel::reshape", "3x4", "5x2"});
  check_shape_error([&] { binary_cross_entropy(a, c); },
                    {"gumbel::binary_cross_entropy", "3x4", "2x3"});
  check_shape_error([&] { binary_cross_entropy_with_logits(a, c); },
                    {"gumbel::binary_cross_entropy_with_logits", "3x4", "2x3"});
  check_shape_error([&] { kl_categorical(a, c); }, {"gumbel::kl_categorical", "3x4", "2x3"});
  check_shape_error([&] { softmax(tape.constant(Md::Zero(3, 0))); }, {"gumbel::softmax", "3x0"});
  check_shape_error([&] { (void)a.item(); }, {"item", "3x4"});
}

TEST_CASE("invalid values are reported, not turned into NaN") {
  Tape<double> tape;
  Md all_masked = Md::Zero(2, 3);
  all_masked.row(1).setConstant(-INFINITY);
  const auto msg = message_of<ValueError>([&] { softmax(tape.constant(all_masked)); });
  CHECK(msg.find("gumbel::softmax: row 1") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          log_softmax(tape.constant(Md::Constant(1, 2, NAN)));
        }).find("NaN") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          kl_uniform(tape.constant(all_masked));
        }).find("gumbel::kl_uniform") != std::string::npos);
  CHECK(message_of<ValueError>([&] {
          binary_cross_entropy(tape.constant(Md::Constant(1, 2, 1.5)),
                               tape.constant(Md::Zero(1, 2)));
        }).find("[0, 1]") != std::string::npos);
}

TEST_CASE("tape misuse: non-scalar backward, constants only, mixed tapes, empty variables") {
  Tape<double> tape, other;
  const auto x = tape.variable(Md::Ones(2, 2));
  const std::string non_scalar = message_of<TapeError>([&] { tape.backward(x); });
  CHECK(non_scalar.find("gumbel::backward") != std::string::npos);
  CHECK(non_scalar.find("2x2") != std::string::npos);
  CHECK(message_of<TapeError>([&] {
          tape.backward(sum(tape.constant(Md::Ones(2, 2))));
        }).find("does not depend") != std::string::npos);
  const auto y = other.variable(Md::Ones(2, 2));
  CHECK(message_of<TapeError>([&] {
          x + y;
        }).find("gumbel::add: an operand belongs to another tape") != std::string::npos);
  CHECK(message_of<TapeError>([&] { other.backward(sum(x)); }).find("another tape") !=
        std::string::npos);
  const Var<double> empty;
  CHECK(message_of<TapeError>([&] { relu(empty); }).find("gumbel::relu") != std::string::npos);
  CHECK(message_of<TapeError>([&] { (void)empty.rows(); }).find("empty") != std::string::npos);
  CHECK(message_of<TapeError>([&] {
          (void)tape.constant(Md::Ones(1, 1)).grad();
        }).find("does not require a gradient") != std::string::npos);
}
