// Data parallelism over blocks of examples: the fixed summation tree, gradients against one
// whole-batch backward, the same bits for any thread count, errors.
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test_util.hpp"

using namespace gumbel;
using parallel::BlockSpan;

namespace {

// The sum a tree node stands for, written out: "((0+1)+(2+3))".
std::string canonical(BlockSpan node) {
  if (node.size() == 1) return std::to_string(node.begin);
  const Index m = parallel::tree_split(node);
  return "(" + canonical({node.begin, m}) + "+" + canonical({m, node.end}) + ")";
}

bool is_tree_node(BlockSpan node, BlockSpan target) {
  if (node == target) return true;
  if (node.size() <= 1) return false;
  const Index m = parallel::tree_split(node);
  return is_tree_node({node.begin, m}, target) || is_tree_node({m, node.end}, target);
}

// The root's expression rebuilt from the pieces alone (as DataParallel's final sum does).
std::string from_pieces(BlockSpan node, const std::vector<BlockSpan>& pieces) {
  for (const BlockSpan& p : pieces) {
    if (p == node) return canonical(p);
  }
  const Index m = parallel::tree_split(node);
  return "(" + from_pieces({node.begin, m}, pieces) + "+" + from_pieces({m, node.end}, pieces) +
         ")";
}

// Two linear layers around a Gumbel-Softmax sample: noise, products and a sampler per block.
template <class T>
struct Net {
  Generator init{7, 1};
  nn::Sequential<T> encoder;
  nn::Sequential<T> decoder;
  Net() {
    encoder.template add<nn::Linear<T>>(6, 12, init);
    decoder.template add<nn::Linear<T>>(12, 5, init);
    decoder.template add<nn::ReLU<T>>();
    decoder.template add<nn::Linear<T>>(5, 3, init);
  }
  ParameterList<T> parameters() {
    ParameterList<T> all = encoder.parameters();
    for (Parameter<T>* p : decoder.parameters()) all.push_back(p);
    return all;
  }
  // Rows [begin, end) of the batch, their share of the batch's mean squared error.
  Var<T> loss(Tape<T>& tape, const Matrix<T>& x, const Matrix<T>& target, Index begin, Index end,
              Index batch, Generator noise) {
    const Var<T> xs = tape.constant(x.middleRows(begin, end - begin));
    const Var<T> logits = reshape(encoder(xs), (end - begin) * 3, 4);
    const Var<T> z = reshape(gumbel_softmax(logits, T(0.7), noise), end - begin, 12);
    const Var<T> d = decoder(z) - tape.constant(target.middleRows(begin, end - begin));
    return sum(square(d)) * T(1.0 / double(batch));
  }
};

template <class T>
Matrix<T> data(Index rows, Index cols, std::uint64_t stream) {
  return Generator(11, stream).normal<T>(rows, cols);
}

// Each block's noise from its own subsequence of one stream: block b of step s is s * 64 + b.
Generator block_noise(Index step, Index block) {
  return Generator(3, 9).subsequence(std::uint64_t(step * 64 + block));
}

template <class T>
std::vector<Matrix<T>> values_of(const ParameterList<T>& params) {
  std::vector<Matrix<T>> out;
  for (const Parameter<T>* p : params) out.push_back(p->value);
  return out;
}

template <class T>
std::vector<Matrix<T>> grads_of(const ParameterList<T>& params) {
  std::vector<Matrix<T>> out;
  for (const Parameter<T>* p : params) out.push_back(p->grad);
  return out;
}

// `steps` Adam steps of the net on a fixed batch, `blocks` blocks on `threads` threads.
std::vector<Matrix<float>> train(Index rows, Index blocks, int threads, int steps,
                                 std::vector<double>* losses = nullptr) {
  Net<float> net;
  const Matrix<float> x = data<float>(rows, 6, 1);
  const Matrix<float> t = data<float>(rows, 3, 2);
  optim::Adam<float> adam(net.parameters(), {0.01f});
  parallel::DataParallel<float> dp(net.parameters(), blocks, threads);
  for (int s = 0; s < steps; ++s) {
    const double loss = dp.step(
        rows,
        [&](Tape<float>& tape, Index b, Index begin, Index end) {
          return net.loss(tape, x, t, begin, end, rows, block_noise(s, b));
        },
        adam);
    if (losses != nullptr) losses->push_back(loss);
  }
  return values_of(net.parameters());
}

}  // namespace

TEST_CASE("block tree: every worker's pieces are tree nodes that rebuild the root's sum") {
  for (Index blocks = 1; blocks <= 13; ++blocks) {
    const std::string root = canonical({0, blocks});
    for (Index workers = 1; workers <= blocks; ++workers) {
      std::vector<BlockSpan> pieces;
      for (Index w = 0; w < workers; ++w) {
        const BlockSpan held = parallel::worker_blocks(blocks, workers, w);
        std::vector<BlockSpan> mine;
        parallel::tree_pieces({0, blocks}, held, mine);
        Index next = held.begin;
        for (const BlockSpan& p : mine) {
          CHECK(p.begin == next);
          CHECK(is_tree_node({0, blocks}, p));
          next = p.end;
          pieces.push_back(p);
        }
        CHECK(next == held.end);
      }
      CHECK(from_pieces({0, blocks}, pieces) == root);
    }
  }
  CHECK(canonical({0, 4}) == "((0+1)+(2+3))");
  CHECK(canonical({0, 3}) == "(0+(1+2))");
}

TEST_CASE("block rows share a batch evenly and cover it") {
  for (Index rows : {0, 1, 5, 100, 101}) {
    for (Index blocks : {1, 2, 3, 4, 7}) {
      Index next = 0;
      for (Index b = 0; b < blocks; ++b) {
        const BlockSpan r = parallel::block_rows(rows, blocks, b);
        CHECK(r.begin == next);
        CHECK(r.size() >= rows / blocks);
        CHECK(r.size() <= rows / blocks + 1);
        next = r.end;
      }
      CHECK(next == rows);
    }
  }
}

TEST_CASE("data parallel: the gradient and loss of the whole batch, in double") {
  const Index rows = 10;
  const Matrix<double> x = data<double>(rows, 6, 1);
  const Matrix<double> t = data<double>(rows, 3, 2);
  for (Index blocks : {1, 2, 3, 4, 10, 13}) {
    CAPTURE(blocks);
    Net<double> net;
    // The reference: one tape, the same noise per block (each block's rows on their own).
    Tape<double> tape;
    Var<double> total = tape.scalar(0.0);
    for (Index b = 0; b < blocks; ++b) {
      const BlockSpan r = parallel::block_rows(rows, blocks, b);
      if (r.size() > 0)
        total = total + net.loss(tape, x, t, r.begin, r.end, rows, block_noise(0, b));
    }
    tape.backward(total);
    const auto expected = grads_of(net.parameters());
    zero_grad(net.parameters());
    parallel::DataParallel<double> dp(net.parameters(), blocks, 2);
    const double loss = dp.gradients(rows, [&](Tape<double>& tp, Index b, Index begin, Index end) {
      return net.loss(tp, x, t, begin, end, rows, block_noise(0, b));
    });
    CHECK(loss == doctest::Approx(total.item()).epsilon(1e-14));
    const auto got = grads_of(net.parameters());
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double scale = expected[i].cwiseAbs().maxCoeff();
      CHECK(scale > 0);
      CHECK((got[i] - expected[i]).cwiseAbs().maxCoeff() <= 1e-14 * scale);
    }
    // gradients() sets the gradient rather than adding to it.
    dp.gradients(rows, [&](Tape<double>& tp, Index b, Index begin, Index end) {
      return net.loss(tp, x, t, begin, end, rows, block_noise(0, b));
    });
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(net.parameters()[i]->grad == got[i]);
  }
}

TEST_CASE("data parallel: blocks summed in the tree's order, bit for bit") {
  // Three blocks: g0 + (g1 + g2), each block's gradient from a backward of its own.
  const Index rows = 9;
  const Matrix<float> x = data<float>(rows, 6, 1);
  const Matrix<float> t = data<float>(rows, 3, 2);
  Net<float> net;
  std::vector<std::vector<Matrix<float>>> g;
  for (Index b = 0; b < 3; ++b) {
    zero_grad(net.parameters());
    Tape<float> tape;
    tape.backward(net.loss(tape, x, t, 3 * b, 3 * b + 3, rows, block_noise(0, b)));
    g.push_back(grads_of(net.parameters()));
  }
  for (int threads : {1, 2, 3}) {
    parallel::DataParallel<float> dp(net.parameters(), 3, threads);
    dp.gradients(rows, [&](Tape<float>& tape, Index b, Index begin, Index end) {
      return net.loss(tape, x, t, begin, end, rows, block_noise(0, b));
    });
    for (std::size_t i = 0; i < g[0].size(); ++i) {
      const Matrix<float> expected = g[0][i] + (g[1][i] + g[2][i]);
      CHECK(net.parameters()[i]->grad == expected);
    }
  }
}

TEST_CASE("data parallel: the same parameters and losses for any thread count") {
  for (Index blocks : {1, 2, 4, 5}) {
    CAPTURE(blocks);
    std::vector<double> one_losses;
    const auto one = train(37, blocks, 1, 6, &one_losses);
    for (int threads : {2, 3, 4, 8}) {
      CAPTURE(threads);
      std::vector<double> losses;
      const auto many = train(37, blocks, threads, 6, &losses);
      CHECK(losses == one_losses);
      for (std::size_t i = 0; i < one.size(); ++i) CHECK(many[i] == one[i]);
    }
  }
  // The block count is part of the result: another count rounds differently.
  const auto two = train(37, 2, 1, 6);
  const auto four = train(37, 4, 1, 6);
  bool differ = false;
  for (std::size_t i = 0; i < two.size(); ++i) differ = differ || two[i] != four[i];
  CHECK(differ);
}

TEST_CASE("data parallel: the fused step is gradients() then the optimizer's step") {
  for (const bool use_sgd : {false, true}) {
    const Index rows = 23;
    const Matrix<float> x = data<float>(rows, 6, 1);
    const Matrix<float> t = data<float>(rows, 3, 2);
    Net<float> a;
    Net<float> b;
    std::unique_ptr<optim::Optimizer<float>> oa;
    std::unique_ptr<optim::Optimizer<float>> ob;
    if (use_sgd) {
      oa = std::make_unique<optim::SGD<float>>(
          a.parameters(), optim::SGDOptions<float>{0.05f, 0.9f, 0.0f, 0.01f, true});
      ob = std::make_unique<optim::SGD<float>>(
          b.parameters(), optim::SGDOptions<float>{0.05f, 0.9f, 0.0f, 0.01f, true});
    } else {
      oa = std::make_unique<optim::Adam<float>>(a.parameters(), optim::AdamOptions<float>{0.01f});
      ob = std::make_unique<optim::Adam<float>>(b.parameters(), optim::AdamOptions<float>{0.01f});
    }
    parallel::DataParallel<float> da(a.parameters(), 4, 2);
    parallel::DataParallel<float> db(b.parameters(), 4, 3);
    for (int s = 0; s < 4; ++s) {
      da.step(
          rows,
          [&](Tape<float>& tape, Index k, Index begin, Index end) {
            return a.loss(tape, x, t, begin, end, rows, block_noise(s, k));
          },
          *oa);
      db.gradients(rows, [&](Tape<float>& tape, Index k, Index begin, Index end) {
        return b.loss(tape, x, t, begin, end, rows, block_noise(s, k));
      });
      ob->step();
    }
    CHECK(oa->steps() == 4);
    const auto va = values_of(a.parameters());
    const auto vb = values_of(b.parameters());
    for (std::size_t i = 0; i < va.size(); ++i) CHECK(va[i] == vb[i]);
  }
}

TEST_CASE("optimizers: update_slice over any split is step(), bit for bit") {
  const auto run = [](bool sliced, bool use_sgd) {
    Parameter<float> p(Generator(5, 1).normal<float>(8, 25), "p");
    Parameter<float> q(Generator(5, 2).normal<float>(1, 3), "q");
    std::unique_ptr<optim::Optimizer<float>> opt;
    if (use_sgd) {
      opt = std::make_unique<optim::SGD<float>>(
          ParameterList<float>{&p, &q}, optim::SGDOptions<float>{0.1f, 0.8f, 0.1f, 0.01f, false});
    } else {
      opt = std::make_unique<optim::Adam<float>>(
          ParameterList<float>{&p, &q}, optim::AdamOptions<float>{0.02f, 0.8f, 0.9f, 1e-8f, 0.01f});
    }
    for (int s = 0; s < 3; ++s) {
      p.grad = Generator(6, std::uint64_t(s)).normal<float>(8, 25);
      q.grad = Generator(7, std::uint64_t(s)).normal<float>(1, 3);
      if (!sliced) {
        opt->step();
        continue;
      }
      opt->begin_slices();
      opt->update_slice(1, 0, 3);
      opt->update_slice(0, 128, 200);  // out of order, uneven, at multiples of 64
      opt->update_slice(0, 0, 64);
      opt->update_slice(0, 64, 128);
    }
    return std::pair<Matrix<float>, Matrix<float>>{p.value, q.value};
  };
  for (const bool use_sgd : {false, true}) {
    const auto whole = run(false, use_sgd);
    const auto sliced = run(true, use_sgd);
    CHECK(whole.first == sliced.first);
    CHECK(whole.second == sliced.second);
  }
}

TEST_CASE("data parallel: fewer rows than blocks, and an empty batch") {
  const auto few = train(3, 5, 2, 3);
  const auto few_serial = train(3, 5, 1, 3);
  for (std::size_t i = 0; i < few.size(); ++i) CHECK(few[i] == few_serial[i]);
  Net<float> net;
  parallel::DataParallel<float> dp(net.parameters(), 3, 2);
  int calls = 0;
  const double loss = dp.gradients(0, [&](Tape<float>& tape, Index, Index, Index) {
    ++calls;
    return tape.scalar(1.0f);
  });
  CHECK(calls == 0);
  CHECK(loss == 0.0);
  for (const Parameter<float>* p : net.parameters()) CHECK(p->grad.isZero(0));
}

TEST_CASE("data parallel: a block that throws changes nothing and the next step is clean") {
  const Index rows = 16;
  const Matrix<float> x = data<float>(rows, 6, 1);
  const Matrix<float> t = data<float>(rows, 3, 2);
  Net<float> net;
  Net<float> fresh;
  optim::Adam<float> adam(net.parameters(), {0.01f});
  optim::Adam<float> fresh_adam(fresh.parameters(), {0.01f});
  parallel::DataParallel<float> dp(net.parameters(), 4, 2);
  parallel::DataParallel<float> fresh_dp(fresh.parameters(), 4, 2);
  const auto before = values_of(net.parameters());
  const auto loss_of = [&](Net<float>& n) {
    return [&](Tape<float>& tape, Index b, Index begin, Index end) {
      return n.loss(tape, x, t, begin, end, rows, block_noise(0, b));
    };
  };
  CHECK_THROWS_WITH_AS(dp.step(
                           rows,
                           [&](Tape<float>& tape, Index b, Index begin, Index end) {
                             if (b == 2) throw ValueError("block 2 is bad");
                             return net.loss(tape, x, t, begin, end, rows, block_noise(0, b));
                           },
                           adam),
                       "block 2 is bad", ValueError);
  CHECK(adam.steps() == 0);
  const auto after = values_of(net.parameters());
  for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] == before[i]);
  dp.step(rows, loss_of(net), adam);
  fresh_dp.step(rows, loss_of(fresh), fresh_adam);
  const auto a = values_of(net.parameters());
  const auto b = values_of(fresh.parameters());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
  // A loss from another tape, and a shape error inside a block, name what went wrong.
  Tape<float> other;
  const Var<float> foreign = other.scalar(1.0f);
  CHECK_THROWS_WITH_AS(
      dp.gradients(rows, [&](Tape<float>&, Index, Index, Index) { return foreign; }),
      doctest::Contains("loss_of must return a variable of the tape it was given"), TapeError);
}

TEST_CASE("data parallel: invalid settings are ValueErrors") {
  Net<float> net;
  CHECK_THROWS_WITH_AS(parallel::DataParallel<float>(net.parameters(), 0, 1),
                       doctest::Contains("blocks = 0"), ValueError);
  CHECK_THROWS_WITH_AS(parallel::DataParallel<float>(net.parameters(), 2, 0),
                       doctest::Contains("threads = 0"), ValueError);
  CHECK_THROWS_WITH_AS(parallel::DataParallel<float>({}, 2, 1), doctest::Contains("empty"),
                       ValueError);
  parallel::DataParallel<float> dp(net.parameters(), 2, 1);
  Net<float> other;
  optim::Adam<float> adam(other.parameters());
  CHECK_THROWS_WITH_AS(
      dp.step(
          4, [&](Tape<float>& tape, Index, Index, Index) { return tape.scalar(0.0f); }, adam),
      doctest::Contains("is not among the optimizer's parameters"), ValueError);
  CHECK_THROWS_WITH_AS(Generator(1, 2).subsequence(std::uint64_t{1} << 32),
                       doctest::Contains("below 2^32"), ValueError);
}

TEST_CASE("tape: gradient buffers take the parameters' gradients, ready once per parameter") {
  Net<double> net;
  const Matrix<double> x = data<double>(5, 6, 1);
  const Matrix<double> t = data<double>(5, 3, 2);
  Tape<double> plain;
  plain.backward(net.loss(plain, x, t, 0, 5, 5, block_noise(0, 0)));
  const auto expected = grads_of(net.parameters());
  zero_grad(net.parameters());
  GradientBuffers<double> buffers(net.parameters());
  Tape<double> tape;
  tape.set_gradient_buffers(&buffers);
  std::vector<const Parameter<double>*> ready;
  tape.backward(net.loss(tape, x, t, 0, 5, 5, block_noise(0, 0)),
                [&](Parameter<double>& p) { ready.push_back(&p); });
  CHECK(ready.size() == net.parameters().size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(buffers.grad(i) == expected[i]);
    CHECK(net.parameters()[i]->grad.isZero(0));
  }
  Parameter<double> stranger(Matrix<double>::Ones(1, 1), "stranger");
  CHECK_THROWS_WITH_AS(tape.parameter(stranger), doctest::Contains("'stranger' is not one of"),
                       ValueError);
}

TEST_CASE("data parallel: a parameter recorded twice, through a view or not at all, each step") {
  // The blocks' buffers are not zeroed before a step: the first write assigns. A parameter on
  // two nodes must get both contributions, one seen through a reshape must get its own, and
  // one a step leaves out (on the tape but unused, or not on it) must get zero, not the last
  // step's gradient.
  const Index rows = 7;
  const Matrix<double> x = data<double>(rows, 3, 1);
  Generator init(5, 2);
  Parameter<double> w(init.normal<double>(4, 3), "w");
  Parameter<double> v(init.normal<double>(3, 3), "v");
  Parameter<double> u(init.normal<double>(2, 2), "u");
  Parameter<double> o(init.normal<double>(1, 3), "o");
  const ParameterList<double> params{&w, &v, &u, &o};
  const auto loss_of = [&](Tape<double>& tape, Index step, Index begin, Index end) {
    const Var<double> xs = tape.constant(x.middleRows(begin, end - begin));
    const Var<double> a = linear(xs, tape.parameter(w));
    const Var<double> b = linear(xs, tape.parameter(w));
    const Var<double> vs = reshape(tape.parameter(v), 1, 9);
    const Var<double> us = tape.parameter(u);
    Var<double> loss = sum(mul(a, tanh(b))) + sum(square(vs)) * double(end - begin);
    if (step % 2 == 0) {
      loss = loss + (sum(square(us)) + sum(tape.parameter(o))) * double(end - begin);
    }
    return loss * (1.0 / double(rows));
  };
  for (const Index blocks : {1, 2, 3}) {
    CAPTURE(blocks);
    parallel::DataParallel<double> dp(params, blocks, 2);
    for (Index step = 0; step < 3; ++step) {
      CAPTURE(step);
      zero_grad(params);
      Tape<double> tape;
      tape.backward(loss_of(tape, step, 0, rows));
      const auto expected = grads_of(params);
      dp.gradients(rows, [&](Tape<double>& tp, Index, Index begin, Index end) {
        return loss_of(tp, step, begin, end);
      });
      const auto got = grads_of(params);
      for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(params[i]->name);
        if (i >= 2 && step % 2 == 1) {
          CHECK(got[i].isZero(0));
        } else {
          const double scale = expected[i].cwiseAbs().maxCoeff();
          CHECK(scale > 0);
          CHECK((got[i] - expected[i]).cwiseAbs().maxCoeff() <= 1e-13 * scale);
        }
      }
    }
  }
}

TEST_CASE("chunk schedule: every chunk once, early sums marked, own range first, then stealing") {
  // Chunks of 4 elements: 3 + 1 + 2 + 1 = 7, cut for 3 threads into [0, 2), [2, 4), [4, 7).
  parallel::ChunkSchedule schedule;
  schedule.configure({9, 4, 8, 1}, 4, 3, 2);
  REQUIRE(schedule.count() == 7);
  schedule.reset(1);
  parallel::ChunkSchedule::Chunk c;
  using Tuple = std::tuple<std::size_t, Index, Index>;
  const auto complete = [&](std::size_t slot) {  // both blocks' gradients are done
    schedule.ready(slot);
    schedule.ready(slot);
  };
  const auto early = [&](int thread) {
    REQUIRE(schedule.next_early(thread, c));
    return Tuple{c.slot, c.begin, c.size};
  };
  complete(2);
  complete(3);
  // Thread 2's range (chunks 4-6: parameters 2 and 3) is complete: it sums it from the front.
  CHECK(early(2) == Tuple{2, 0, 4});
  CHECK(early(2) == Tuple{2, 4, 4});
  CHECK(early(2) == Tuple{3, 0, 1});
  complete(0);
  // Thread 1 sums its own first chunk (2, parameter 0); its next (parameter 1) is not complete,
  // thread 2's range is taken, so it sums from the back of thread 0's range.
  CHECK(early(1) == Tuple{0, 8, 1});
  CHECK(early(1) == Tuple{0, 4, 4});
  schedule.worker_done();
  CHECK_FALSE(schedule.next_early(0, c));  // no worker computes: the early phase is over
  complete(1);
  schedule.seal();
  // Thread 1 takes its own range from the front, then the back of thread 2's and thread 0's.
  std::vector<std::tuple<std::size_t, Index, bool>> seen;
  int victim = 0;
  while (schedule.next(1, victim, c)) seen.emplace_back(c.slot, c.begin, c.summed);
  const std::vector<std::tuple<std::size_t, Index, bool>> expected = {
      {0, 8, true}, {1, 0, false},                // its own: chunks 2 and 3
      {3, 0, true}, {2, 4, true},  {2, 0, true},  // thread 2's, from the back
      {0, 4, true}, {0, 0, false}};               // thread 0's, from the back
  CHECK(seen == expected);
  for (int t : {0, 2}) {
    victim = 0;
    CHECK_FALSE(schedule.next(t, victim, c));
  }
}

TEST_CASE("chunk schedule: threads sharing the chunks take each exactly once") {
  parallel::ChunkSchedule schedule;
  const std::vector<Index> sizes = {5000, 3, 70000, 2048, 1, 9999};
  schedule.configure(sizes, 2048, 4, 1);
  std::vector<std::vector<std::pair<std::size_t, Index>>> taken(4);
  for (int round = 0; round < 20; ++round) {
    schedule.reset(0);
    schedule.seal();
    for (auto& t : taken) t.clear();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        int victim = 0;
        parallel::ChunkSchedule::Chunk c;
        while (schedule.next(t, victim, c)) taken[std::size_t(t)].emplace_back(c.slot, c.begin);
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::pair<std::size_t, Index>> all;
    std::size_t total = 0;
    for (const auto& t : taken) {
      total += t.size();
      all.insert(t.begin(), t.end());
    }
    CHECK(total == std::size_t(schedule.count()));
    CHECK(all.size() == std::size_t(schedule.count()));
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      for (Index j = 0; j < sizes[s]; j += 2048) CHECK(all.count({s, j}) == 1);
    }
  }
}

TEST_CASE("data parallel: a slow block changes no bit: early sums and shared chunks") {
  // Parameters of several chunks each, so that threads sum chunks while a block still runs
  // and take chunks from each other's ranges.
  const Index rows = 24;
  const Matrix<float> x = data<float>(rows, 40, 1);
  const Matrix<float> target = data<float>(rows, 30, 2);
  struct Model {
    Generator init{5, 0};
    nn::Linear<float> first{40, 130, init};
    nn::Linear<float> second{130, 30, init};
    ParameterList<float> parameters() {
      ParameterList<float> all = first.parameters();
      for (Parameter<float>* p : second.parameters()) all.push_back(p);
      return all;
    }
  };
  const auto train_with = [&](int threads, Index slow_block) {
    Model m;
    optim::Adam<float> adam(m.parameters(), {0.01f});
    parallel::DataParallel<float> dp(m.parameters(), 3, threads);
    for (int s = 0; s < 3; ++s) {
      dp.step(
          rows,
          [&](Tape<float>& tape, Index b, Index begin, Index end) {
            if (b == (slow_block + s) % 3)
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            const Var<float> h = relu(m.first(tape.constant(x.middleRows(begin, end - begin))));
            const Var<float> d = m.second(h) - tape.constant(target.middleRows(begin, end - begin));
            return sum(square(d)) * (1.0f / float(rows));
          },
          adam);
    }
    return values_of(m.parameters());
  };
  const auto one = train_with(1, 0);
  for (const int threads : {2, 3}) {
    for (const Index slow : {0, 1, 2}) {
      CAPTURE(threads);
      CAPTURE(slow);
      const auto many = train_with(threads, slow);
      for (std::size_t i = 0; i < one.size(); ++i) CHECK(many[i] == one[i]);
    }
  }
}
