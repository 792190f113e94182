// Counts heap allocations: a warm tape must record and run a training step without any.
// (Its own binary, because it replaces the global operator new.)
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <atomic>
#include <cstdlib>
#include <new>

#include "test_util.hpp"

// The replacements below pair malloc with free by design; GCC cannot see that once they are
// inlined into their callers and warns at every delete.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace gumbel;

TEST_CASE("a steady-state training step allocates nothing") {
  Generator gen(5);
  nn::Linear<float> l1(12, 16, gen), l2(16, 12, gen);
  ParameterList<float> params = l1.parameters();
  for (auto* p : l2.parameters()) params.push_back(p);
  optim::Adam<float> adam(params);
  const Matrix<float> x = gen.uniform<float>(8, 12);
  Tape<float> tape;
  long during_step = -1;
  for (int step = 0; step < 4; ++step) {
    const long before = g_allocations.load();
    tape.clear();
    adam.zero_grad();
    const auto input = tape.constant(x);
    const auto q = reshape(l1(input), 32, 4);
    const auto z = reshape(softmax(q), 8, 16);
    const auto logits = l2(relu(z));
    const auto loss = binary_cross_entropy_with_logits(logits, input, Reduction::sum) / 8.0f +
                      kl_uniform(q, Reduction::sum) / 8.0f;
    tape.backward(loss);
    adam.step();
    during_step = g_allocations.load() - before;
  }
  CHECK(during_step == 0);
}
