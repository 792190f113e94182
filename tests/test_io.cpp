// Saving and loading by name as .npz: round trips in float and double, Adam's state resuming
// bit for bit, NumPy reading our files and writing files we read (when /usr/bin/python3 has
// numpy), and every truncation and corruption of a file a FileError, never a crash.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;
using test::slurp;
using test::spill;
namespace fs = std::filesystem;

namespace {

template <class T>
struct TwoLayers : nn::Module<T> {
  nn::Linear<T> fc1, fc2;
  explicit TwoLayers(Generator& gen) : fc1(3, 4, gen), fc2(4, 2, gen) {
    this->register_module("fc1", fc1);
    this->register_module("fc2", fc2);
  }
};

template <class T>
bool same_values(TwoLayers<T>& a, TwoLayers<T>& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (pa[i]->value != pb[i]->value) return false;
  }
  return true;
}

/// `steps` steps of `optimizer` on the squared error of `net` for (x, y).
void train(TwoLayers<double>& net, optim::Optimizer<double>& optimizer, const Md& x, const Md& y,
           int steps) {
  Tape<double> tape;
  for (int s = 0; s < steps; ++s) {
    tape.clear();
    net.zero_grad();
    tape.backward(mean(square(net.fc2(tanh(net.fc1(tape.constant(x)))) - tape.constant(y))));
    optimizer.step();
  }
}

}  // namespace

TEST_CASE_TEMPLATE("a module saves and loads by name, bit for bit", T, float, double) {
  const fs::path dir = test::scratch_dir("io_roundtrip");
  Generator g1(1), g2(2);
  TwoLayers<T> saved(g1), loaded(g2);
  CHECK(!same_values(saved, loaded));
  io::save(saved, (dir / "net.npz").string());
  io::load(loaded, (dir / "net.npz").string());
  CHECK(same_values(saved, loaded));
  const auto arrays = io::load_npz((dir / "net.npz").string());
  REQUIRE(arrays.size() == 4);
  CHECK(arrays[0].name == "fc1.weight");
  CHECK(arrays[3].name == "fc2.bias");
  CHECK(arrays[3].rows == 1);
  CHECK(arrays[3].cols == 2);
  CHECK(!fs::exists(dir / "net.npz.tmp"));
}

TEST_CASE("Adam's state saved with the model resumes training bit for bit") {
  const fs::path dir = test::scratch_dir("io_adam");
  const Md x = test::normal(16, 3, 5), y = test::normal(16, 2, 6);
  Generator g1(7);
  TwoLayers<double> a(g1);
  optim::Adam<double> adam_a(a.parameters(), {0.01});
  train(a, adam_a, x, y, 10);
  io::save(a, (dir / "model.npz").string());
  io::save(adam_a, a, (dir / "adam.npz").string());
  train(a, adam_a, x, y, 10);

  Generator g2(8);
  TwoLayers<double> b(g2);
  optim::Adam<double> adam_b(b.parameters(), {0.01});
  io::load(b, (dir / "model.npz").string());
  io::load(adam_b, b, (dir / "adam.npz").string());
  CHECK(adam_b.steps() == 10);
  train(b, adam_b, x, y, 10);
  CHECK(same_values(a, b));
}

TEST_CASE("any optimizer's state saves by name: SGD's momentum resumes bit for bit") {
  const fs::path dir = test::scratch_dir("io_sgd");
  const Md x = test::normal(16, 3, 15), y = test::normal(16, 2, 16);
  optim::SGDOptions<double> options;
  options.lr = 0.05;
  options.momentum = 0.9;
  options.nesterov = true;
  Generator g1(17), g2(18);
  TwoLayers<double> a(g1), b(g2);
  optim::SGD<double> sgd_a(a.parameters(), options), sgd_b(b.parameters(), options);
  train(a, sgd_a, x, y, 10);
  io::save_checkpoint((dir / "sgd.npz").string(), a, sgd_a);
  train(a, sgd_a, x, y, 10);
  const auto names = io::load_npz((dir / "sgd.npz").string());
  CHECK(names.at(4).name == "optimizer.fc1.weight.momentum_buffer");
  io::load_checkpoint((dir / "sgd.npz").string(), b, sgd_b);
  CHECK(sgd_b.steps() == 10);
  train(b, sgd_b, x, y, 10);
  CHECK(same_values(a, b));
  // Adam's file is not SGD's: the names say so.
  optim::Adam<double> adam(b.parameters());
  CHECK(test::message_of<FileError>([&] {
          io::load_checkpoint((dir / "sgd.npz").string(), b, adam);
        }).find("no array named optimizer.fc1.weight.exp_avg") != std::string::npos);
}

TEST_CASE("loading checks names, shapes and types, and changes nothing on an error") {
  const fs::path dir = test::scratch_dir("io_errors");
  Generator gen(3);
  TwoLayers<double> net(gen);
  const std::string path = (dir / "net.npz").string();
  io::save(net, path);
  const Md before = net.fc1.weight.value;
  const auto error = [&](const std::vector<io::NpyArray>& arrays) {
    io::save_npz(path, arrays);
    return test::message_of<FileError>([&] { io::load(net, path); });
  };
  auto arrays = io::load_npz(path);
  auto missing = arrays;
  missing.erase(missing.begin() + 2);
  CHECK(error(missing).find("net.npz: no array named fc2.weight") != std::string::npos);
  auto extra = arrays;
  extra.push_back(io::to_npy("fc3.weight", Md::Zero(1, 1)));
  CHECK(error(extra).find("the array fc3.weight belongs to nothing loaded here") !=
        std::string::npos);
  auto shape = arrays;
  shape[1] = io::to_npy("fc1.bias", Md::Zero(1, 5));
  CHECK(error(shape).find("fc1.bias has shape 1x5, 1x4 is needed") != std::string::npos);
  auto type = arrays;
  type[0] = io::to_npy("fc1.weight", gumbel::Matrix<float>::Zero(4, 3));
  CHECK(error(type).find("fc1.weight holds float32 values, float64 are needed") !=
        std::string::npos);
  auto first_wrong = arrays;  // fc1.weight is fine but fc2.bias is not: fc1 must not change
  first_wrong[0] = io::to_npy("fc1.weight", Md::Ones(4, 3));
  first_wrong[3] = io::to_npy("fc2.bias", Md::Zero(2, 1));
  CHECK(!error(first_wrong).empty());
  CHECK(net.fc1.weight.value == before);
  CHECK(test::message_of<FileError>([&] {
          io::load(net, (dir / "none.npz").string());
        }).find("none.npz: cannot open the file for reading") != std::string::npos);
  CHECK(test::message_of<FileError>([&] {
          io::save(net, (dir / "no/such/dir.npz").string());
        }).find("cannot open") != std::string::npos);
}

TEST_CASE("every truncation and every corrupted byte of a file is a FileError or a clean load") {
  const fs::path dir = test::scratch_dir("io_corrupt");
  Generator gen(4);
  TwoLayers<float> net(gen);
  const fs::path good = dir / "good.npz";
  io::save(net, good.string());
  const std::string bytes = slurp(good);
  const fs::path bad = dir / "bad.npz";
  int errors = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    spill(bad, bytes.substr(0, n));
    TwoLayers<float> target(gen);
    try {
      io::load(target, bad.string());
    } catch (const FileError& e) {
      ++errors;
      CHECK(std::string(e.what()).find("bad.npz") != std::string::npos);
    }
  }
  CHECK(errors == int(bytes.size()));  // no prefix of an archive is a whole archive
  int loads = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = char(flipped[i] ^ 0x5A);
    spill(bad, flipped);
    TwoLayers<float> target(gen);
    try {
      io::load(target, bad.string());
      ++loads;
      CHECK(same_values(target, net));  // a flip that loads changed nothing that matters
    } catch (const FileError&) {
    }
  }
  MESSAGE(loads << " of " << bytes.size() << " single-byte corruptions load (dates, padding)");
}

TEST_CASE("NumPy reads our files and we read NumPy's (skipped without /usr/bin/python3 + numpy)") {
  if (!test::have_python("numpy")) return;
  const fs::path dir = test::scratch_dir("io_numpy");
  Generator gen(5);
  TwoLayers<double> net(gen);
  io::save(net, (dir / "ours.npz").string());
  // NumPy reads every array with its name, shape and values, and writes them back three ways:
  // plain, with 1-D biases (as a PyTorch state_dict has them) and column-major, and compressed.
  const std::string script = (dir / "roundtrip.py").string();
  spill(script,
        "import numpy as np, sys\n"
        "d = np.load(sys.argv[1] + '/ours.npz')\n"
        "print(' '.join(f'{k}:{d[k].shape}:{d[k].dtype}' for k in d.files))\n"
        "np.savez(sys.argv[1] + '/theirs.npz', **{k: d[k] for k in d.files})\n"
        "np.savez(sys.argv[1] + '/torchlike.npz', **{k: (d[k].reshape(-1) if k.endswith('bias') "
        "else np.asfortranarray(d[k])) for k in d.files})\n"
        "np.savez_compressed(sys.argv[1] + '/compressed.npz', **{k: d[k] for k in d.files})\n"
        "np.savez(sys.argv[1] + '/sums.npz', total=np.array([[sum(float(d[k].sum()) for k in "
        "d.files)]]))\n");
  const std::string out = (dir / "out.txt").string();
  REQUIRE(std::system(("/usr/bin/python3 " + script + " " + dir.string() + " > " + out).c_str()) ==
          0);
  CHECK(slurp(out) ==
        "fc1.weight:(4, 3):float64 fc1.bias:(1, 4):float64 fc2.weight:(2, 4):float64 "
        "fc2.bias:(1, 2):float64\n");
  double total = 0;
  for (auto* p : net.parameters()) total += p->value.sum();
  const auto sums = io::load_npz((dir / "sums.npz").string());
  CHECK(sums.at(0).matrix<double>()(0, 0) == doctest::Approx(total).epsilon(1e-14));
  for (const char* file : {"theirs.npz", "torchlike.npz"}) {
    Generator other(6);
    TwoLayers<double> loaded(other);
    io::load(loaded, (dir / file).string());
    CHECK(same_values(loaded, net));
  }
  Generator other(7);
  TwoLayers<double> loaded(other);
  CHECK(test::message_of<FileError>([&] {
          io::load(loaded, (dir / "compressed.npz").string());
        }).find("is compressed (method 8): only stored members are read") != std::string::npos);
}

TEST_CASE("a checkpoint holds model, optimizer and extra arrays in one file, checked as a whole") {
  const fs::path dir = test::scratch_dir("io_checkpoint");
  const std::string path = (dir / "ckpt.npz").string();
  const Md x = test::normal(8, 3, 9), y = test::normal(8, 2, 10);
  Generator g1(11);
  TwoLayers<double> a(g1);
  optim::Adam<double> adam_a(a.parameters(), {0.02});
  train(a, adam_a, x, y, 5);
  const std::string progress = "{\"epoch\": 5, \"note\": \"\\u00e9\\u0000\"}";
  io::save_checkpoint(path, a, adam_a, {io::bytes_to_npy("progress", progress)});
  train(a, adam_a, x, y, 5);

  const auto names = [&] {
    std::vector<std::string> out;
    for (const auto& arr : io::load_npz(path)) out.push_back(arr.name);
    return out;
  }();
  REQUIRE(names.size() == 4 + 9 + 1);
  CHECK(names.front() == "model.fc1.weight");
  CHECK(names[4] == "optimizer.fc1.weight.exp_avg");
  CHECK(names[12] == "optimizer.step");
  CHECK(names.back() == "progress");

  Generator g2(12);
  TwoLayers<double> b(g2);
  optim::Adam<double> adam_b(b.parameters(), {0.02});
  const auto extra = io::load_checkpoint(path, b, adam_b, {"progress"});
  REQUIRE(extra.count("progress") == 1);
  const io::NpyArray& text = extra.at("progress");
  CHECK(text.dtype() == "uint8");
  CHECK(text.bytes == progress);
  CHECK(adam_b.steps() == 5);
  train(b, adam_b, x, y, 5);
  CHECK(same_values(a, b));

  // Errors name the file and the array; nothing changes on any of them.
  Generator g3(13);
  TwoLayers<double> c(g3);
  optim::Adam<double> adam_c(c.parameters(), {0.02});
  const Md before = c.fc1.weight.value;
  CHECK(test::message_of<FileError>([&] {
          io::load_checkpoint(path, c, adam_c, {"progress", "history"});
        }).find("ckpt.npz: no array named history") != std::string::npos);
  CHECK(test::message_of<FileError>([&] {
          io::load_checkpoint(path, c, adam_c);
        }).find("the array progress belongs to nothing loaded here") != std::string::npos);
  CHECK(test::message_of<FileError>([&] { io::load(c, path); }).find("no array named fc1.weight") !=
        std::string::npos);
  CHECK(test::message_of<ValueError>([&] {
          (void)text.matrix<double>();
        }).find("progress holds uint8, not float64") != std::string::npos);
  optim::Adam<double> wrong(a.parameters(), {0.02});
  CHECK(test::message_of<FileError>([&] {
          io::load_checkpoint(path, c, wrong, {"progress"});
        }).find("the optimizer's parameter 0 is not the module's fc1.weight") != std::string::npos);
  CHECK(c.fc1.weight.value == before);
  CHECK(adam_c.steps() == 0);
}

TEST_CASE("NumPy reads a checkpoint's bytes member as text (skipped without numpy)") {
  if (!test::have_python("numpy")) return;
  const fs::path dir = test::scratch_dir("io_numpy_bytes");
  Generator gen(14);
  TwoLayers<float> net(gen);
  optim::Adam<float> adam(net.parameters());
  io::save_checkpoint((dir / "ckpt.npz").string(), net, adam,
                      {io::bytes_to_npy("progress", "{\"epochs\": [1, 2]}")});
  const std::string script = (dir / "read.py").string();
  spill(script,
        "import numpy as np, sys, json\n"
        "d = np.load(sys.argv[1] + '/ckpt.npz')\n"
        "print(json.loads(bytes(d['progress']).decode())['epochs'][1], d['progress'].dtype,\n"
        "      d['optimizer.step'][0, 0], d['model.fc2.bias'].shape)\n"
        "np.savez(sys.argv[1] + '/back.npz', **{k: d[k] for k in d.files})\n");
  const std::string out = (dir / "out.txt").string();
  REQUIRE(std::system(("/usr/bin/python3 " + script + " " + dir.string() + " > " + out).c_str()) ==
          0);
  CHECK(slurp(out) == "2 uint8 0.0 (1, 2)\n");
  Generator other(15);
  TwoLayers<float> loaded(other);
  optim::Adam<float> adam2(loaded.parameters());
  const auto extra = io::load_checkpoint((dir / "back.npz").string(), loaded, adam2, {"progress"});
  CHECK(extra.at("progress").bytes == "{\"epochs\": [1, 2]}");
  CHECK(same_values(loaded, net));
}
