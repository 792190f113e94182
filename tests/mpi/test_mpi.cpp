// distributed::DataParallel on however many ranks mpirun starts: after N steps every rank holds
// the parameters a single process computes with the same blocks (bit for bit with the exact
// reduction, to rounding with MPI_Iallreduce), for any bucket size and thread count; a rank
// whose step throws makes every rank throw, naming it, and the next step runs.
#include <gumbel/distributed/mpi.hpp>
#include <gumbel/gumbel.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace gumbel;

namespace {

int failures = 0;
int my_rank = 0;

#define EXPECT(condition, ...)                                                          \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      ++failures;                                                                       \
      std::fprintf(stderr, "rank %d: %s:%d: failed: %s: ", my_rank, __FILE__, __LINE__, \
                   #condition);                                                         \
      std::fprintf(stderr, __VA_ARGS__);                                                \
      std::fprintf(stderr, "\n");                                                       \
    }                                                                                   \
  } while (0)

// Two linear layers around a Gumbel-Softmax sample.
struct Net {
  nn::Sequential<float> encoder;
  nn::Sequential<float> decoder;
  explicit Net(std::uint64_t seed) {
    Generator init(seed, 1);
    encoder.add<nn::Linear<float>>(6, 12, init);
    decoder.add<nn::Linear<float>>(12, 5, init);
    decoder.add<nn::ReLU<float>>();
    decoder.add<nn::Linear<float>>(5, 3, init);
  }
  ParameterList<float> parameters() {
    ParameterList<float> all = encoder.parameters();
    for (Parameter<float>* p : decoder.parameters()) all.push_back(p);
    return all;
  }
  Var<float> loss(Tape<float>& tape, const Matrix<float>& x, const Matrix<float>& target,
                  Index begin, Index end, Index batch, Generator noise) {
    const Var<float> xs = tape.constant(x.middleRows(begin, end - begin));
    const Var<float> logits = reshape(encoder(xs), (end - begin) * 3, 4);
    const Var<float> z = reshape(gumbel_softmax(logits, 0.7f, noise), end - begin, 12);
    const Var<float> d = decoder(z) - tape.constant(target.middleRows(begin, end - begin));
    return sum(square(d)) * float(1.0 / double(batch));
  }
};

constexpr Index kRows = 37;
constexpr Index kBlocks = 4;
constexpr int kSteps = 5;

const Matrix<float>& inputs() {
  static const Matrix<float> x = Generator(11, 1).normal<float>(kRows, 6);
  return x;
}
const Matrix<float>& targets() {
  static const Matrix<float> t = Generator(11, 2).normal<float>(kRows, 3);
  return t;
}
Generator block_noise(int step, Index block) {
  return Generator(3, 9).subsequence(std::uint64_t(step * kBlocks + block));
}

struct Trajectory {
  std::vector<double> losses;
  std::vector<Matrix<float>> values;
  std::vector<Matrix<float>> moments;  // Adam's, both kinds
};

void record_moments(optim::Adam<float>& adam, Trajectory& out) {
  for (const auto& m : adam.first_moments()) out.moments.push_back(m);
  for (const auto& v : adam.second_moments()) out.moments.push_back(v);
}

Trajectory reference() {
  Net net(7);
  optim::Adam<float> adam(net.parameters(), {0.01f});
  parallel::DataParallel<float> dp(net.parameters(), kBlocks, 1);
  Trajectory out;
  for (int s = 0; s < kSteps; ++s) {
    out.losses.push_back(dp.step(
        kRows,
        [&](Tape<float>& tape, Index b, Index begin, Index end) {
          return net.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(s, b));
        },
        adam));
  }
  for (Parameter<float>* p : net.parameters()) out.values.push_back(p->value);
  record_moments(adam, out);
  return out;
}

Trajectory distributed_run(const distributed::Options& options) {
  // Rank 0's initial parameters reach every rank: the others start elsewhere.
  Net net(my_rank == 0 ? 7 : 100 + std::uint64_t(my_rank));
  optim::Adam<float> adam(net.parameters(), {0.01f});
  distributed::DataParallel<float> ddp(net.parameters(), MPI_COMM_WORLD, options);
  Trajectory out;
  for (int s = 0; s < kSteps; ++s) {
    out.losses.push_back(ddp.step(
        kRows,
        [&](Tape<float>& tape, Index b, Index begin, Index end) {
          const parallel::BlockSpan mine = ddp.my_rows(kRows);
          if (begin < mine.begin || end > mine.end) {
            throw ValueError("block outside this rank's rows");
          }
          return net.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(s, b));
        },
        adam));
  }
  for (Parameter<float>* p : net.parameters()) out.values.push_back(p->value);
  ddp.synchronize_state(adam);  // each rank advanced its own shards' moments only
  record_moments(adam, out);
  return out;
}

// FNV-1a of every parameter's bytes: equal on all ranks when the parameters are.
std::uint64_t fingerprint(const std::vector<Matrix<float>>& values) {
  std::uint64_t h = 1469598103934665603ull;
  for (const Matrix<float>& m : values) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(m.data());
    for (std::size_t i = 0; i < std::size_t(m.size()) * sizeof(float); ++i) {
      h = (h ^ bytes[i]) * 1099511628211ull;
    }
  }
  return h;
}

void same_on_every_rank(const Trajectory& t, const char* what) {
  const std::uint64_t mine = fingerprint(t.values);
  std::uint64_t low = 0, high = 0;
  MPI_Allreduce(&mine, &low, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&mine, &high, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  EXPECT(low == high, "%s: parameters differ between ranks", what);
}

void exact_matches(const Trajectory& expected, const Trajectory& got, const char* what) {
  EXPECT(got.losses == expected.losses, "%s: losses differ from one process's", what);
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    EXPECT(got.values[i] == expected.values[i], "%s: parameter %zu differs from one process's",
           what, i);
  }
  for (std::size_t i = 0; i < expected.moments.size(); ++i) {
    EXPECT(got.moments[i] == expected.moments[i], "%s: Adam moment %zu differs from one process's",
           what, i);
  }
  same_on_every_rank(got, what);
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  my_rank = distributed::rank(MPI_COMM_WORLD);
  const int ranks = distributed::size(MPI_COMM_WORLD);
  const Trajectory expected = reference();

  // The exact reduction: one process's bits, for one bucket, many small ones, 2 threads a rank.
  for (const std::size_t bucket_bytes : {std::size_t{1} << 20, std::size_t{64}}) {
    for (const int threads : {1, 2}) {
      distributed::Options o;
      o.blocks = kBlocks;
      o.threads = threads;
      o.bucket_bytes = bucket_bytes;
      const std::string what = "exact, bucket " + std::to_string(bucket_bytes) + " bytes, " +
                               std::to_string(threads) + " thread(s)";
      exact_matches(expected, distributed_run(o), what.c_str());
    }
  }

  // gradients() alone: the whole batch's gradient on every rank, one process's bits.
  {
    Net one(7);
    parallel::DataParallel<float> local(one.parameters(), kBlocks, 1);
    const auto loss_of_one = [&](Tape<float>& tape, Index b, Index begin, Index end) {
      return one.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(0, b));
    };
    const double expected_loss = local.gradients(kRows, loss_of_one);
    Net net(7);
    distributed::DataParallel<float> ddp(net.parameters(), MPI_COMM_WORLD, {});
    const double loss =
        ddp.gradients(kRows, [&](Tape<float>& tape, Index b, Index begin, Index end) {
          return net.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(0, b));
        });
    EXPECT(loss == expected_loss, "gradients: loss %.17g against %.17g", loss, expected_loss);
    for (std::size_t i = 0; i < net.parameters().size(); ++i) {
      EXPECT(net.parameters()[i]->grad == one.parameters()[i]->grad,
             "gradients: parameter %zu's gradient differs from one process's", i);
    }
  }

  // MPI_Iallreduce: the same parameters on every rank, one process's within rounding; the
  // update shared by 2 threads a rank gives the bits of 1.
  {
    Trajectory one_thread;
    for (const int threads : {1, 2}) {
      distributed::Options o;
      o.reduction = distributed::Reduction::fast;
      o.bucket_bytes = 256;
      o.threads = threads;
      const Trajectory got = distributed_run(o);
      same_on_every_rank(got, "fast");
      for (std::size_t i = 0; i < expected.values.size(); ++i) {
        const float diff = (got.values[i] - expected.values[i]).cwiseAbs().maxCoeff();
        EXPECT(diff <= 1e-5f, "fast: parameter %zu differs by %g", i, double(diff));
      }
      for (int s = 0; s < kSteps; ++s) {
        EXPECT(std::abs(got.losses[std::size_t(s)] - expected.losses[std::size_t(s)]) <=
                   1e-5 * std::abs(expected.losses[std::size_t(s)]),
               "fast: loss of step %d", s);
      }
      if (threads == 1) {
        one_thread = got;
      } else {
        EXPECT(got.losses == one_thread.losses, "fast: losses differ between 1 and 2 threads");
        for (std::size_t i = 0; i < got.values.size(); ++i) {
          EXPECT(got.values[i] == one_thread.values[i],
                 "fast: parameter %zu differs between 1 and 2 threads", i);
        }
      }
    }
  }

  // A step that throws on the last rank only: every rank throws, naming it, nothing changes,
  // and the next step runs everywhere.
  {
    Net net(7);
    optim::Adam<float> adam(net.parameters(), {0.01f});
    distributed::DataParallel<float> ddp(net.parameters(), MPI_COMM_WORLD, {});
    std::vector<Matrix<float>> before;
    for (Parameter<float>* p : net.parameters()) before.push_back(p->value);
    std::string message;
    try {
      ddp.step(
          kRows,
          [&](Tape<float>& tape, Index b, Index begin, Index end) {
            if (my_rank == ranks - 1) throw ValueError("bad input on this rank");
            return net.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(0, b));
          },
          adam);
    } catch (const distributed::DistributedError& e) {
      message = e.what();
    }
    const std::string expected_message = "rank " + std::to_string(ranks - 1) + " of " +
                                         std::to_string(ranks) +
                                         " failed in its step: bad input on this rank";
    EXPECT(message == expected_message, "error: got '%s'", message.c_str());
    EXPECT(adam.steps() == 0, "error: the optimizer stepped");
    for (std::size_t i = 0; i < before.size(); ++i) {
      EXPECT(net.parameters()[i]->value == before[i], "error: parameter %zu changed", i);
    }
    ddp.step(
        kRows,
        [&](Tape<float>& tape, Index b, Index begin, Index end) {
          return net.loss(tape, inputs(), targets(), begin, end, kRows, block_noise(0, b));
        },
        adam);
    Trajectory after;
    for (Parameter<float>* p : net.parameters()) after.values.push_back(p->value);
    same_on_every_rank(after, "after an error");
  }

  // Fewer blocks than ranks is refused on every rank.
  if (ranks > 1) {
    Net net(7);
    distributed::Options o;
    o.blocks = ranks - 1;
    std::string message;
    try {
      distributed::DataParallel<float> ddp(net.parameters(), MPI_COMM_WORLD, o);
    } catch (const ValueError& e) {
      message = e.what();
    }
    EXPECT(message.find("is below the number of ranks") != std::string::npos, "blocks: '%s'",
           message.c_str());
  }

  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (my_rank == 0) {
    std::printf("gumbel_mpi_tests on %d rank(s): %s (%d failed check(s))\n", ranks,
                total == 0 ? "passed" : "FAILED", total);
  }
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
