// The MNIST VAE example's pieces on small synthetic IDX files: the reader and its errors, a
// short training run and every output file, checkpoint round trip, resume and corruption.
#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "checkpoint.hpp"
#include "files.hpp"
#include "idx.hpp"
#include "train.hpp"

namespace fs = std::filesystem;
using test::message_of;

namespace {

std::string idx_bytes(std::vector<std::uint32_t> dims, const std::vector<std::uint8_t>& data) {
  std::string out{'\0', '\0', '\x08', char(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out += char((d >> shift) & 0xff);
  }
  out.append(data.begin(), data.end());
  return out;
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

examples::IdxArray parse(const std::string& bytes) {
  return examples::parse_idx(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                             "f.idx");
}

/// A fresh folder under the build tree for one test.
fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::current_path() / "vae_test_work" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// Synthetic 8x8 "digits": each image is one of three stripe patterns with noise, so that a
/// model with three classes per latent has something to learn.
void write_dataset(const fs::path& dir, const std::string& prefix, std::uint32_t count,
                   std::uint64_t seed) {
  gumbel::Generator gen(seed);
  const gumbel::Matrix<float> noise = gen.uniform<float>(count, 64);
  std::vector<std::uint8_t> pixels, labels;
  for (std::uint32_t i = 0; i < count; ++i) {
    const int kind = int(i % 3);
    for (int p = 0; p < 64; ++p) {
      const int row = p / 8, col = p % 8;
      const bool on = kind == 0 ? row % 2 == 0 : kind == 1 ? col % 2 == 0 : row == col;
      pixels.push_back(std::uint8_t(std::min(255.0f, (on ? 200.0f : 10.0f) + 50.0f * noise(i, p))));
    }
    labels.push_back(std::uint8_t(kind));
  }
  write(dir / (prefix + "-images-idx3-ubyte"), idx_bytes({count, 8, 8}, pixels));
  write(dir / (prefix + "-labels-idx1-ubyte"), idx_bytes({count}, labels));
}

vae::Options small_options(const fs::path& data, const fs::path& out) {
  vae::Options o;
  o.epochs = 3;
  o.batch_size = 20;
  o.latents = 4;
  o.classes = 3;
  o.lr = 3e-3;
  o.data_dir = data.string();
  o.output_dir = out.string();
  o.quiet = true;
  return o;
}

/// small_options on fresh synthetic data: `name`_data with `train` and `test` images, output to
/// `name`_out.
vae::Options fresh_run(const std::string& name, std::uint32_t train, std::uint32_t test,
                       std::uint64_t seed) {
  const fs::path data = scratch_dir(name + "_data");
  write_dataset(data, "train", train, seed);
  write_dataset(data, "t10k", test, seed + 1);
  return small_options(data, scratch_dir(name + "_out"));
}

/// The model, Adam and progress of the checkpoint in `o.output_dir` (a run of 8 x 8 images).
struct Restored {
  vae::ModelShape shape;
  gumbel::Generator init{99};
  vae::CategoricalVae model;
  gumbel::optim::Adam<float> adam;
  vae::Checkpoint progress;

  explicit Restored(const vae::Options& o)
      : shape(shape_of(o)),
        model(shape, init),
        adam(model.parameters()),
        progress(vae::load_checkpoint((fs::path(o.output_dir) / "checkpoint.npz").string(),
                                      vae::checkpoint_settings(o), model, adam)) {}

  static vae::ModelShape shape_of(const vae::Options& o) {
    vae::ModelShape s;
    s.pixels = 64;
    s.latents = o.latents;
    s.classes = o.classes;
    return s;
  }
};

}  // namespace

TEST_CASE("IDX: a valid file parses, every corruption is named with the file") {
  const auto ok = parse(idx_bytes({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(ok.dims == std::vector<std::uint32_t>{2, 3});
  CHECK(ok.data == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});

  const auto error = [](const std::string& bytes) {
    return message_of<examples::DataError>([&] { parse(bytes); });
  };
  CHECK(error(std::string("\0\0", 2)).find("f.idx: too short") == 0);
  CHECK(error(std::string("\1\0\x08\1", 4)).find("not an IDX file") != std::string::npos);
  CHECK(error(std::string("\0\0\x0d\1", 4)).find("element type") != std::string::npos);
  CHECK(error(std::string("\0\0\x08\0", 4)).find("0 dimensions") != std::string::npos);
  CHECK(error(std::string("\0\0\x08\2\0\0", 6)).find("truncated inside its header") !=
        std::string::npos);
  CHECK(error(idx_bytes({2, 0}, {})).find("dimension 1 is 0") != std::string::npos);
  CHECK(error(idx_bytes({2, 3}, {1, 2, 3})).find("truncated: the header promises 6 bytes") !=
        std::string::npos);
  CHECK(error(idx_bytes({2, 3}, {1, 2, 3, 4, 5, 6, 7})).find("1 unexpected bytes") !=
        std::string::npos);
  CHECK(error(idx_bytes({65536, 65536, 65536, 65536}, {})).find("overflow") != std::string::npos);
}

TEST_CASE("IDX: files are read plain or gzip-compressed, missing files and mismatches are errors") {
  const fs::path dir = scratch_dir("idx_files");
  write_dataset(dir, "train", 30, 1);
  const auto plain = examples::read_idx((dir / "train-images-idx3-ubyte").string());
  // The same bytes gzip-compressed under the .gz name.
  const std::string raw = idx_bytes({30, 8, 8}, plain.data);
  gzFile gz = gzopen((dir / "t10k-images-idx3-ubyte.gz").string().c_str(), "wb");
  gzwrite(gz, raw.data(), unsigned(raw.size()));
  gzclose(gz);
  fs::copy(dir / "train-labels-idx1-ubyte", dir / "t10k-labels-idx1-ubyte");
  const examples::Dataset test = examples::load_split(dir.string(), "t10k");
  CHECK(test.images.rows() == 30);
  CHECK(test.images.cols() == 64);
  CHECK(test.images(0, 0) == float(plain.data[0]) / 255.0f);
  CHECK(examples::load_split(dir.string(), "t10k", 7).images.rows() == 7);
  const examples::Dataset bytes_only = examples::load_split(dir.string(), "t10k", 7, false);
  CHECK(bytes_only.images.size() == 0);  // no floats asked for: none made
  CHECK(bytes_only.bytes == test.bytes.topRows(7));

  CHECK(message_of<examples::DataError>([&] {
          examples::load_split(dir.string(), "nope");
        }).find("not found") != std::string::npos);
  write(dir / "bad-images-idx3-ubyte", idx_bytes({4, 8, 8}, std::vector<std::uint8_t>(256)));
  write(dir / "bad-labels-idx1-ubyte", idx_bytes({3}, {1, 2, 3}));
  CHECK(message_of<examples::DataError>([&] {
          examples::load_split(dir.string(), "bad");
        }).find("holds 4 images but") != std::string::npos);
  write(dir / "bad-labels-idx1-ubyte", idx_bytes({4}, {1, 2, 3, 12}));
  CHECK(message_of<examples::DataError>([&] {
          examples::load_split(dir.string(), "bad");
        }).find("label 12 at index 3") != std::string::npos);
}

TEST_CASE("a short training run lowers the loss and writes every output file") {
  const fs::path data = scratch_dir("data_short");
  write_dataset(data, "train", 200, 2);
  write_dataset(data, "t10k", 60, 3);
  const fs::path out = scratch_dir("out_short");
  const auto history = vae::run(small_options(data, out));
  REQUIRE(history.size() == 3);
  CHECK(history.back().train_loss < history.front().train_loss);
  CHECK(history.back().test_loss < history.front().test_loss);

  for (int epoch = 1; epoch <= 3; ++epoch) {
    for (const char* stem : {"reconstructions", "samples"}) {
      char name[64];
      std::snprintf(name, sizeof name, "%s_epoch%03d.png", stem, epoch);
      int w = 0, h = 0, channels = 0;
      unsigned char* img = stbi_load((out / name).string().c_str(), &w, &h, &channels, 0);
      INFO(name);
      REQUIRE(img != nullptr);
      CHECK(channels == 1);
      CHECK(w > 8 * 2 * 8);
      CHECK(h > 8 * 2);
      stbi_image_free(img);
    }
  }
  std::ifstream csv(out / "loss.csv");
  std::string line;
  std::getline(csv, line);
  CHECK(line == "epoch,train_loss,test_loss,test_nelbo,temperature,seconds,images_per_second");
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 3);
  const auto metrics = nlohmann::json::parse(std::ifstream(out / "metrics.json"));
  CHECK(metrics["final_test_loss"].get<double>() == history.back().test_loss);
  CHECK(metrics["final_test_nelbo"].get<double>() == history.back().test_nelbo);
  CHECK(history.back().test_nelbo < history.front().test_nelbo);
  CHECK(metrics["epochs"].size() == 3);
  CHECK(metrics["settings"]["latents"] == "4");
  std::ifstream svg(out / "loss.svg");
  std::getline(svg, line);
  CHECK(line.rfind("<svg", 0) == 0);
  // The weights by name, as the module tree names them; the checkpoint holds the same values.
  const auto weights = gumbel::io::load_npz((out / "weights.npz").string());
  REQUIRE(weights.size() == 12);
  CHECK(weights.front().name == "encoder.0.weight");
  CHECK(weights.front().rows == 512);
  CHECK(weights.front().cols == 64);
  CHECK(weights.back().name == "decoder.4.bias");
  const auto checkpoint = gumbel::io::load_npz((out / "checkpoint.npz").string());
  REQUIRE(checkpoint.size() == 12 + 2 * 12 + 1 + 2);  // model, Adam's moments and step, progress
  CHECK(checkpoint.front().name == "model.encoder.0.weight");
  CHECK(checkpoint.front().bytes == weights.front().bytes);
  const gumbel::io::NpyArray& recorded = checkpoint.back();
  CHECK(recorded.name == "history");
  REQUIRE(recorded.rows == 3);
  CHECK(recorded.matrix<double>()(2, 2) == history.back().test_loss);

  // A second run into the same folder must not silently replace the first.
  CHECK(message_of<gumbel::ValueError>([&] {
          vae::run(small_options(data, out));
        }).find("--resume") != std::string::npos);
}

TEST_CASE(
    "resume continues exactly: 2 epochs + resume to 4 equals 4 straight, for each estimator") {
  const fs::path data = scratch_dir("data_resume");
  write_dataset(data, "train", 100, 4);
  write_dataset(data, "t10k", 40, 5);
  for (const char* estimator : {"soft", "st", "gumbel-rao"}) {
    CAPTURE(estimator);
    vae::Options straight = small_options(data, scratch_dir(std::string("straight_") + estimator));
    straight.epochs = 4;
    straight.estimator = estimator;
    const auto full = vae::run(straight);

    vae::Options part = straight;
    part.output_dir = scratch_dir(std::string("resumed_") + estimator).string();
    part.epochs = 2;
    vae::run(part);
    part.epochs = 4;
    part.resume = true;
    const auto resumed = vae::run(part);
    REQUIRE(resumed.size() == 4);
    for (std::size_t e = 0; e < 4; ++e) {
      CHECK(resumed[e].train_loss == full[e].train_loss);
      CHECK(resumed[e].test_loss == full[e].test_loss);
      CHECK(resumed[e].test_nelbo == full[e].test_nelbo);
    }
  }
}

TEST_CASE("corrupt, truncated or mismatched checkpoints are refused with a clear message") {
  const fs::path data = scratch_dir("data_ckpt");
  write_dataset(data, "train", 40, 6);
  write_dataset(data, "t10k", 20, 7);
  const fs::path out = scratch_dir("out_ckpt");
  vae::Options o = small_options(data, out);
  o.epochs = 1;
  vae::run(o);
  const fs::path ckpt = out / "checkpoint.npz";
  std::string bytes;
  {
    std::ifstream in(ckpt, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  o.resume = true;
  o.epochs = 2;

  vae::Options other = o;
  other.latents = 5;
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(other);
        }).find("latents = 4, but this run has latents = 5") != std::string::npos);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x20;
  write(ckpt, flipped);
  CHECK(message_of<vae::CheckpointError>([&] { vae::run(o); }).find("CRC-32 mismatch") !=
        std::string::npos);
  write(ckpt, bytes.substr(0, bytes.size() - 100));
  CHECK(message_of<vae::CheckpointError>([&] { vae::run(o); }).find("not a zip archive") !=
        std::string::npos);
  write(ckpt, "not a checkpoint at all");
  CHECK(message_of<vae::CheckpointError>([&] { vae::run(o); }).find(ckpt.string()) == 0);
  write(ckpt, bytes);
  CHECK(vae::run(o).size() == 2);
}

TEST_CASE("invalid options are refused before any work, naming the option") {
  vae::Options o;
  o.tau_min = 2.0;
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(o); }).find("--tau-min") == 0);
  o = vae::Options{};
  o.estimator = "magic";
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(o); }).find("magic") !=
        std::string::npos);
  o = vae::Options{};
  o.classes = 1;
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(o); }).find("--classes") == 0);
}

TEST_CASE("options: every bad value names its own option, conflicting flags are refused") {
  const auto error = [](const vae::Options& o) {
    return message_of<gumbel::ValueError>([&] { vae::validate(o); });
  };
  vae::Options o;
  o.test_limit = -1;
  CHECK(error(o).find("--test-limit") == 0);
  o = vae::Options{};
  o.train_limit = -1;
  CHECK(error(o).find("--train-limit") == 0);
  o = vae::Options{};
  o.threads = 100000;
  CHECK(error(o).find("--threads: must lie in [1, 1024]") == 0);
  o = vae::Options{};
  o.blocks = 0;
  CHECK(error(o).find("--blocks: must lie in [1, batch-size = 100], got 0") == 0);
  o.blocks = 101;
  CHECK(error(o).find("--blocks: must lie in [1, batch-size = 100], got 101") == 0);
  o = vae::Options{};
  o.tau0 = 1e-40;
  o.tau_min = 1e-40;
  CHECK(error(o).find("1/tau overflows") != std::string::npos);
  o = vae::Options{};
  o.tau0 = 1e300;  // infinite as a float
  CHECK(error(o).find("--tau0") == 0);
  o = vae::Options{};
  o.latents = gumbel::Index(1) << 40;
  o.classes = gumbel::Index(1) << 40;
  CHECK(error(o).find("--latents") == 0);
  o = vae::Options{};
  o.batch_size = gumbel::Index(1) << 62;
  CHECK(error(o).find("--batch-size") == 0);
  o = vae::Options{};
  o.resume = true;
  o.overwrite = true;
  CHECK(error(o).find("--overwrite: cannot be combined with --resume") == 0);
}

TEST_CASE("settings are stored exactly: a resume with another tiny learning rate is refused") {
  vae::Options o = fresh_run("exact", 40, 20, 8);
  const fs::path out = o.output_dir;
  o.epochs = 1;
  o.lr = 1e-11;
  vae::run(o);
  const auto metrics = nlohmann::json::parse(std::ifstream(out / "metrics.json"));
  CHECK(std::stod(metrics["settings"]["lr"].get<std::string>()) == 1e-11);
  CHECK(std::stod(metrics["settings"]["anneal_rate"].get<std::string>()) == o.anneal_rate);
  o.resume = true;
  o.epochs = 2;
  o.lr = 4e-11;
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(o);
        }).find("written with lr = 1e-11, but this run has lr = 4e-11") != std::string::npos);
  o.lr = 1e-11;
  CHECK(vae::run(o).size() == 2);
}

TEST_CASE("a diverging run is reported as such, with the epoch and step") {
  vae::Options o = fresh_run("diverge", 100, 20, 10);
  o.lr = 1e30;
  const std::string msg = message_of<std::runtime_error>([&] { vae::run(o); });
  INFO(msg);
  CHECK(msg.find("the loss became NaN or inf at epoch 1, step ") == 0);
  CHECK(msg.find("--lr") != std::string::npos);
}

TEST_CASE("the output folder: stale temporaries removed, unwritable and odd paths refused early") {
  vae::Options o = fresh_run("folder", 40, 20, 12);
  const fs::path out = o.output_dir;
  // A temporary file of a process that was killed while writing: a child that has exited.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  const fs::path stale = out / ("metrics.json.tmp." + std::to_string(child) + ".0");
  const fs::path alive = out / ("metrics.json.tmp." + std::to_string(getppid()) + ".3");
  write(stale, std::string(1000, 'x'));
  write(alive, "another running process is writing this");
  o.epochs = 1;
  // --resume without a checkpoint starts a new run and says so.
  o.resume = true;
  std::ostringstream said;
  std::streambuf* before = std::cerr.rdbuf(said.rdbuf());
  const auto history = vae::run(o);
  std::cerr.rdbuf(before);
  CHECK(history.size() == 1);
  CHECK(said.str().find("no checkpoint at") != std::string::npos);
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(alive));

  // A checkpoint path that is a folder names the path.
  const fs::path odd = scratch_dir("out_odd");
  fs::create_directories(odd / "checkpoint.npz");
  vae::Options p = o;
  p.output_dir = odd.string();
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(p);
        }).find((odd / "checkpoint.npz").string()) == 0);
  // A folder nothing can be written into is refused before any training (root included).
  CHECK(message_of<std::runtime_error>([] {
          examples::require_writable_dir("/proc");
        }).find("/proc: cannot write") == 0);
}

TEST_CASE("IDX: the element type is printed in hex, and a gzip bomb is refused by its header") {
  const auto error = [](const std::string& bytes) {
    return message_of<examples::DataError>([&] { parse(bytes); });
  };
  CHECK(error(std::string("\0\0\x0d\1", 4)).find("element type 0x0D") != std::string::npos);
  const fs::path dir = scratch_dir("idx_bomb");
  const auto gz_write = [&](const std::string& name, const std::string& bytes) {
    gzFile gz = gzopen((dir / name).string().c_str(), "wb9");
    for (std::size_t at = 0; at < bytes.size(); at += 1 << 20) {
      const std::size_t n = std::min<std::size_t>(1 << 20, bytes.size() - at);
      gzwrite(gz, bytes.data() + at, unsigned(n));
    }
    gzclose(gz);
  };
  // The header promises 6 bytes; 64 MB of zeros follow (64 KB compressed).
  gz_write("bomb.gz", idx_bytes({2, 3}, {1, 2, 3, 4, 5, 6}) + std::string(64 << 20, '\0'));
  CHECK(message_of<examples::DataError>([&] {
          examples::read_idx((dir / "bomb.gz").string());
        }).find("holds more than the 6 bytes of data its header promises") != std::string::npos);
  // A header that promises more than the reader takes is refused before any data is read.
  gz_write("huge.gz", idx_bytes({65536, 65536}, {}) + std::string(1 << 20, '\0'));
  CHECK(message_of<examples::DataError>([&] {
          examples::read_idx((dir / "huge.gz").string());
        }).find("more than this reader accepts") != std::string::npos);
  // Truncated data behind a valid header.
  gz_write("short.gz", idx_bytes({2, 3}, {1, 2, 3}));
  CHECK(message_of<examples::DataError>([&] {
          examples::read_idx((dir / "short.gz").string());
        }).find("truncated: the header promises 6 bytes of data but the file holds 3") !=
        std::string::npos);
  gz_write("good.gz", idx_bytes({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(examples::read_idx((dir / "good.gz").string()).data ==
        std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("--binarize: fixed images are 0/1 from their own seed, dynamic ones change each epoch") {
  vae::Options o = fresh_run("binarize", 60, 30, 31);
  o.epochs = 2;
  o.binarize = "fixed";
  o.binarize_seed = 5;
  const auto fixed = vae::run(o);
  // The first reconstruction grid shows the test images: black or white only.
  int w = 0, h = 0, channels = 0;
  unsigned char* img =
      stbi_load((fs::path(o.output_dir) / "reconstructions_epoch001.png").string().c_str(), &w, &h,
                &channels, 1);
  REQUIRE(img != nullptr);
  // The grid's first row holds the first 16 test images, 16x16 pixels each (8x8 at scale 2)
  // in cells of 18 with a border of 2.
  int grey = 0, white = 0;
  for (int n = 0; n < 16; ++n) {
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        const int v = img[(2 + y) * w + 2 + n * 18 + x];
        grey += v != 0 && v != 255;
        white += v == 255;
      }
    }
  }
  stbi_image_free(img);
  CHECK(grey == 0);
  CHECK(white > 0);

  // The same options: the same binarized data and losses; another binarization seed: other data.
  vae::Options same_data = o;
  same_data.output_dir = scratch_dir("binarize_again").string();
  const auto again = vae::run(same_data);
  CHECK(again[1].train_loss == fixed[1].train_loss);
  vae::Options other_pixels = same_data;
  other_pixels.output_dir = scratch_dir("binarize_other").string();
  other_pixels.binarize_seed = 6;
  CHECK(vae::run(other_pixels)[1].train_loss != fixed[1].train_loss);

  vae::Options dynamic = same_data;
  dynamic.output_dir = scratch_dir("binarize_dynamic").string();
  dynamic.binarize = "dynamic";
  const auto dyn = vae::run(dynamic);
  CHECK(dyn[0].train_loss != fixed[0].train_loss);
  // The test images are the fixed ones in both: the first epoch's test figures differ only
  // through the training, so resume must reproduce the dynamic run exactly.
  vae::Options part = dynamic;
  part.output_dir = scratch_dir("binarize_dynamic_resumed").string();
  part.epochs = 1;
  vae::run(part);
  part.epochs = 2;
  part.resume = true;
  const auto resumed = vae::run(part);
  CHECK(resumed[1].train_loss == dyn[1].train_loss);
  CHECK(resumed[1].test_nelbo == dyn[1].test_nelbo);

  // Resuming a binarized run without the option is refused, and the other way round.
  vae::Options plain = part;
  plain.binarize = "none";
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(plain);
        }).find("written with binarize = dynamic, but this run has binarize at its default") !=
        std::string::npos);

  vae::Options bad = o;
  bad.binarize = "otsu";
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(bad); }) ==
        "--binarize: must be none, fixed or dynamic, got 'otsu'");
}

TEST_CASE("--final-bound writes the test bounds; the importance-weighted one is the tighter") {
  vae::Options o = fresh_run("final_bound", 80, 30, 41);
  o.epochs = 2;
  o.binarize = "dynamic";
  o.encoder = "linear";
  o.final_bound = true;
  o.eval_samples = 200;
  const auto history = vae::run(o);
  const auto b = nlohmann::json::parse(std::ifstream(fs::path(o.output_dir) / "bounds.json"));
  CHECK(b["samples"] == 200);
  CHECK(b["images"] == 30);
  const double nelbo = b["nelbo"], iw = b["iw_nll"], se = b["nelbo_se"];
  const double kl = b["kl"], reconstruction = b["reconstruction"];
  CHECK(nelbo == doctest::Approx(reconstruction + kl).epsilon(1e-12));
  // The single-code figure of the last epoch and the 200-code one estimate the same ELBO.
  CHECK(std::abs(history.back().test_nelbo - nelbo) < 5 * se + 1.0);
  CHECK(iw < nelbo);
  CHECK(kl > 0);
  CHECK(kl <= 4 * std::log(3.0) + 1e-9);  // N log K bounds a KL to the uniform prior

  // Evaluating the finished run again (resume, no epoch left) gives the same figures; with
  // other sizes it is refused naming the setting and both values.
  vae::Options again = o;
  again.resume = true;
  fs::remove(fs::path(o.output_dir) / "bounds.json");
  vae::run(again);
  const auto b2 = nlohmann::json::parse(std::ifstream(fs::path(o.output_dir) / "bounds.json"));
  CHECK(b2["iw_nll"].get<double>() == iw);
  vae::Options other = again;
  other.latents = 6;
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(other);
        }).find("written with latents = 4, but this run has latents = 6") != std::string::npos);

  vae::Options zero = o;
  zero.eval_samples = 0;
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(zero); }) ==
        "--eval-samples: must be at least 1, got 0");
  vae::Options encoder = o;
  encoder.encoder = "deep";
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(encoder); }) ==
        "--encoder: must be articles or linear, got 'deep'");
  vae::Options every = o;
  every.anneal_every = 0;
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(every); }) ==
        "--anneal-every: must be at least 1, got 0");
}

TEST_CASE("a checkpoint of the removed binary format is refused by name and left as it was") {
  vae::Options o = fresh_run("binary_checkpoint", 40, 20, 51);
  const fs::path bin = fs::path(o.output_dir) / "checkpoint.bin";
  const std::string bytes = std::string("GUMBELCK\x02\0\0\0", 12) + std::string(40, '\x01');
  write(bin, bytes);
  o.resume = true;
  const std::string message = message_of<vae::CheckpointError>([&] { vae::run(o); });
  INFO(message);
  CHECK(message.find("checkpoint.bin: a checkpoint of the binary format") != std::string::npos);
  CHECK(message.find("no longer read") != std::string::npos);
  std::ifstream in(bin, std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == bytes);
  CHECK_FALSE(fs::exists(fs::path(o.output_dir) / "checkpoint.npz"));
}

TEST_CASE("a checkpoint's epoch and step counts are checked against its history and settings") {
  vae::Options o = fresh_run("checkpoint_counts", 40, 20, 52);
  o.epochs = 2;
  vae::run(o);
  const fs::path ckpt = fs::path(o.output_dir) / "checkpoint.npz";
  const auto original = gumbel::io::load_npz(ckpt.string());
  // Rewrites the checkpoint with one array replaced, then resumes for one more epoch.
  const auto resume_with = [&](const gumbel::io::NpyArray& replaced) {
    auto arrays = original;
    for (auto& a : arrays) {
      if (a.name == replaced.name) a = replaced;
    }
    gumbel::io::save_npz(ckpt.string(), arrays);
    vae::Options again = o;
    again.epochs = 3;
    again.resume = true;
    return message_of<vae::CheckpointError>([&] { vae::run(again); });
  };
  nlohmann::json progress;
  for (const auto& a : original) {
    if (a.name == "progress") progress = nlohmann::json::parse(a.bytes);
  }
  REQUIRE(progress["epochs_done"] == 2);
  progress["epochs_done"] = std::numeric_limits<std::int64_t>::max();
  CHECK(resume_with(gumbel::io::bytes_to_npy("progress", progress.dump()))
            .find("epochs_done = 9223372036854775807 but the history has 2 epochs") !=
        std::string::npos);
  progress["epochs_done"] = 2;
  gumbel::Matrix<double> step = gumbel::Matrix<double>::Constant(1, 1, 9.2e18);
  const std::string steps = resume_with(gumbel::io::to_npy("optimizer.step", step));
  INFO(steps);
  CHECK(steps.find("checkpoint.npz") != std::string::npos);
  step(0, 0) = 5;  // two epochs of 40 images in batches of 20 take 4 steps
  CHECK(resume_with(gumbel::io::to_npy("optimizer.step", step))
            .find("holds 5 optimizer steps after 2 epochs, but these settings take 2 steps per "
                  "epoch") != std::string::npos);
}

TEST_CASE("--eval-samples beyond memory is refused before training; weights precede the bounds") {
  vae::Options o = fresh_run("eval_samples", 40, 20, 53);
  o.final_bound = true;
  o.eval_samples = gumbel::Index(1) << 40;
  const std::string message = message_of<gumbel::ValueError>([&] { vae::validate(o); });
  INFO(message);
  CHECK(message.find("--eval-samples: 1099511627776 codes per image need more than 8 GiB") == 0);
  CHECK(message_of<gumbel::ValueError>([&] { vae::run(o); }) == message);
  CHECK_FALSE(fs::exists(fs::path(o.output_dir) / "checkpoint.npz"));  // nothing trained
}

TEST_CASE("--evaluate: the bounds of a checkpoint or weights file, for any test images and codes") {
  vae::Options o = fresh_run("evaluate", 40, 30, 54);
  o.epochs = 2;
  o.final_bound = true;
  o.eval_samples = 7;
  vae::run(o);
  const fs::path run_dir = o.output_dir;
  const auto read_json = [](const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
  };
  const nlohmann::json trained = read_json(run_dir / "bounds.json");
  // The weights and the checkpoint give the bounds of the run, image for image.
  for (const char* file : {"weights.npz", "checkpoint.npz"}) {
    CAPTURE(file);
    vae::Options e = o;
    e.final_bound = false;
    e.evaluate = (run_dir / file).string();
    e.output_dir = scratch_dir(std::string("evaluate_") + file).string();
    const nlohmann::json report = vae::evaluate_file(e);
    CHECK(report["nelbo"] == trained["nelbo"]);
    CHECK(report["iw_nll"] == trained["iw_nll"]);
    CHECK(report["images"] == 30);
    CHECK(read_json(fs::path(e.output_dir) / "bounds.json")["model"] == e.evaluate);
  }
  // Other test images and codes than the run had, which --resume would refuse.
  vae::Options e = o;
  e.evaluate = (run_dir / "checkpoint.npz").string();
  e.test_limit = 12;
  e.eval_samples = 3;
  e.output_dir = scratch_dir("evaluate_other").string();
  const nlohmann::json report = vae::evaluate_file(e);
  CHECK(report["images"] == 12);
  CHECK(report["samples"] == 3);
  CHECK(report["epochs"] == 2);
  // A file of another model's shape names the array that differs.
  e.latents = 5;
  CHECK(message_of<gumbel::FileError>([&] { vae::evaluate_file(e); }).find("has shape") !=
        std::string::npos);
  e.latents = o.latents;
  e.resume = true;
  CHECK(message_of<gumbel::ValueError>([&] { vae::validate(e); }).find("--evaluate: reads") == 0);
}

TEST_CASE("threads share each step's blocks: any thread count gives the same bits, and resumes") {
  vae::Options o = fresh_run("blocks_threads", 90, 30, 61);
  o.epochs = 2;
  o.blocks = 3;
  o.threads = 1;
  const auto one = vae::run(o);
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    vae::Options other = o;
    other.threads = threads;
    other.output_dir = scratch_dir("blocks_threads_" + std::to_string(threads)).string();
    const auto many = vae::run(other);
    REQUIRE(many.size() == one.size());
    for (std::size_t e = 0; e < one.size(); ++e) {
      CHECK(many[e].train_loss == one[e].train_loss);
      CHECK(many[e].test_nelbo == one[e].test_nelbo);
    }
  }
  // A resume may change the thread count, not the block count.
  vae::Options resumed = o;
  resumed.output_dir = scratch_dir("blocks_threads_resumed").string();
  resumed.epochs = 1;
  vae::run(resumed);
  resumed.epochs = 2;
  resumed.resume = true;
  resumed.blocks = 2;
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(resumed);
        }).find("written with blocks = 3, but this run has blocks = 2") != std::string::npos);
  resumed.blocks = 3;
  resumed.threads = 2;
  const auto continued = vae::run(resumed);
  REQUIRE(continued.size() == 2);
  CHECK(continued[1].train_loss == one[1].train_loss);
  CHECK(continued[1].test_nelbo == one[1].test_nelbo);
}

TEST_CASE("a checkpoint from before blocks (settings with threads) resumes as one block") {
  vae::Options o = fresh_run("before_blocks", 60, 20, 71);
  o.epochs = 2;
  o.blocks = 1;
  const auto straight = vae::run(o);
  vae::Options part = o;
  part.output_dir = scratch_dir("before_blocks_part").string();
  part.epochs = 1;
  vae::run(part);
  const fs::path dir = part.output_dir;
  Restored r(part);
  // As releases before blocks wrote it: the thread count stored, no block count.
  r.progress.settings.erase("blocks");
  r.progress.settings["threads"] = "4";
  vae::save_checkpoint((dir / "checkpoint.npz").string(), r.progress, r.model, r.adam);
  part.epochs = 2;
  part.resume = true;
  part.blocks = 2;
  CHECK(message_of<vae::CheckpointError>([&] {
          vae::run(part);
        }).find("written with blocks = 1, but this run has blocks = 2") != std::string::npos);
  part.blocks = 1;
  const auto resumed = vae::run(part);
  REQUIRE(resumed.size() == 2);
  CHECK(resumed[1].train_loss == straight[1].train_loss);
}
