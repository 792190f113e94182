// Files made to hurt the reader or the writer: zip entries sharing one member's bytes, paths that
// are devices, folders or links, .npy shapes NumPy refuses, links planted where the writer puts
// its temporary file, a writer killed by the file-size limit, and empty arrays.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.hpp"

using namespace gumbel;
using test::Md;
namespace fs = std::filesystem;

namespace {

std::uint32_t u32_at(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int k = 3; k >= 0; --k) v = v << 8 | static_cast<unsigned char>(s[at + std::size_t(k)]);
  return v;
}

void put_u16_at(std::string& s, std::size_t at, std::uint32_t v) {
  s[at] = char(v & 0xFF);
  s[at + 1] = char((v >> 8) & 0xFF);
}

void put_u32_at(std::string& s, std::size_t at, std::uint32_t v) {
  put_u16_at(s, at, v & 0xFFFF);
  put_u16_at(s, at + 2, v >> 16);
}

/// The FileError message of loading `path` as an .npz (empty when it loads).
std::string load_error(const fs::path& path) {
  return test::message_of<FileError>([&] { io::load_npz(path.string()); });
}

/// The .npy bytes (format 1.0) of six zeros in float64 whose header's shape reads `shape`.
std::string npy_with_shape(const std::string& shape) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  io::detail::put16(out, std::uint32_t(header.size()));
  return out + header + std::string(6 * sizeof(double), '\0');
}

}  // namespace

TEST_CASE("an .npz whose directory points many entries at one member is refused, not copied") {
  const fs::path dir = test::scratch_dir("hostile_overlap");
  const fs::path good = dir / "one.npz";
  io::save_npz(good.string(), {io::to_npy("big", Md::Ones(64, 64))});
  std::string bytes = test::slurp(good);
  const std::size_t eocd = bytes.size() - 22;
  REQUIRE(u32_at(bytes, eocd) == 0x06054b50u);
  const std::size_t directory_at = u32_at(bytes, eocd + 16);
  const std::string entry = bytes.substr(directory_at, eocd - directory_at);
  // Three more central entries, each naming another member but pointing at the same bytes.
  std::string directory = entry;
  for (char c : {'a', 'b', 'c'}) {
    std::string copy = entry;
    copy[46] = c;  // "big.npy" -> "aig.npy", ...
    directory += copy;
  }
  std::string hostile = bytes.substr(0, directory_at) + directory + bytes.substr(eocd);
  const std::size_t new_eocd = hostile.size() - 22;
  put_u16_at(hostile, new_eocd + 8, 4);
  put_u16_at(hostile, new_eocd + 10, 4);
  put_u32_at(hostile, new_eocd + 12, std::uint32_t(directory.size()));
  const fs::path bad = dir / "shared.npz";
  test::spill(bad, hostile);
  const std::string message = load_error(bad);
  INFO(message);
  CHECK(message.find("shared.npz") != std::string::npos);
  CHECK(message.find("overlap") != std::string::npos);
  CHECK(load_error(good).empty());
}

TEST_CASE("devices, folders and links to them are refused by name, read to no end never") {
  const fs::path dir = test::scratch_dir("hostile_paths");
  fs::create_symlink("/dev/null", dir / "null.npz");
  fs::create_symlink("/dev/zero", dir / "zero.npz");
  fs::create_directories(dir / "folder.npz");
  for (const char* name : {"null.npz", "zero.npz"}) {
    const std::string message = load_error(dir / name);
    INFO(message);
    CHECK(message.find(name) != std::string::npos);
    CHECK(message.find("not a regular file") != std::string::npos);
  }
  const std::string folder = load_error(dir / "folder.npz");
  CHECK(folder.find("folder.npz: is a folder") != std::string::npos);
  Generator gen(1);
  nn::Linear<float> layer(2, 2, gen);
  CHECK(test::message_of<FileError>([&] {
          io::load(layer, (dir / "folder.npz").string());
        }).find("folder.npz") != std::string::npos);
}

TEST_CASE(".npy shapes that are no tuple of sizes are refused as NumPy refuses them") {
  const std::string path = "shapes.npz", nothing;
  const io::detail::Reader reader(path, nothing);  // holds references: named strings
  for (const char* shape : {"(,,)", "(2,,3)", "(,)", "(6)", "(,6)", "(2,3,,)"}) {
    INFO(shape);
    const std::string member = npy_with_shape(shape);
    const std::string error =
        test::message_of<FileError>([&] { io::detail::parse_npy(reader, "x.npy", member); });
    CHECK(error.find("shapes.npz: x.npy: bad shape") != std::string::npos);
  }
  for (const char* shape : {"(6,)", "(2, 3)", "(2,3,)", "(6, )"}) {
    INFO(shape);
    const io::NpyArray a = io::detail::parse_npy(reader, "x.npy", npy_with_shape(shape));
    CHECK(a.rows * a.cols == 6);
  }
}

TEST_CASE("saving never writes through a link planted at the temporary or the target") {
  const fs::path dir = test::scratch_dir("hostile_links");
  const fs::path victim = dir / "victim.txt";
  test::spill(victim, "precious");
  const fs::path target = dir / "m.npz";
  // Links where a writer might put its temporary file: the old fixed name and the new ones.
  fs::create_symlink(victim, dir / "m.npz.tmp");
  for (int n = 0; n < 3; ++n) {
    fs::create_symlink(victim,
                       dir / ("m.npz.tmp." + std::to_string(getpid()) + "." + std::to_string(n)));
  }
  Generator gen(2);
  nn::Linear<double> layer(3, 2, gen);
  io::save(layer, target.string());
  CHECK(test::slurp(victim) == "precious");
  CHECK(fs::is_regular_file(fs::symlink_status(target)));
  nn::Linear<double> back(3, 2, gen);
  io::load(back, target.string());
  CHECK(back.weight.value == layer.weight.value);
  // A target that is itself a link: the link is replaced, its target left alone.
  const fs::path linked = dir / "linked.npz";
  fs::create_symlink(victim, linked);
  io::save(layer, linked.string());
  CHECK(test::slurp(victim) == "precious");
  CHECK(fs::is_regular_file(fs::symlink_status(linked)));
}

TEST_CASE("a save killed by the file-size limit leaves the old file and no temporary behind") {
  const fs::path dir = test::scratch_dir("hostile_xfsz");
  const fs::path target = dir / "m.npz";
  io::save_npz(target.string(), {io::to_npy("old", Md::Ones(2, 2))});
  const std::string before = test::slurp(target);
  const pid_t child = fork();
  if (child == 0) {
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = 4096;
    setrlimit(RLIMIT_FSIZE, &limit);
    signal(SIGXFSZ, SIG_DFL);
    io::save_npz(target.string(), {io::to_npy("new", Md::Ones(200, 200))});
    _exit(0);  // not reached: the write past 4 KiB raises SIGXFSZ
  }
  REQUIRE(child > 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGXFSZ);
  CHECK(test::slurp(target) == before);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    INFO(entry.path().string());
    CHECK(entry.path().filename() == "m.npz");
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE_TEMPLATE("arrays with no rows or no columns save and load", T, float, double) {
  const fs::path dir = test::scratch_dir("hostile_empty");
  const fs::path path = dir / "empty.npz";
  io::save_npz(path.string(),
               {io::to_npy("rows", Matrix<T>(0, 3)), io::to_npy("cols", Matrix<T>(4, 0))});
  const auto arrays = io::load_npz(path.string());
  REQUIRE(arrays.size() == 2);
  const Matrix<T> rows = arrays[0].matrix<T>();
  const Matrix<T> cols = arrays[1].matrix<T>();
  CHECK(rows.rows() == 0);
  CHECK(rows.cols() == 3);
  CHECK(cols.rows() == 4);
  CHECK(cols.cols() == 0);
}

TEST_CASE("write_file_atomic: bytes or a writer; a writer that throws leaves the old file alone") {
  const fs::path dir = test::scratch_dir("hostile_writer");
  const std::string path = (dir / "notes.txt").string();
  io::write_file_atomic(path, std::string("first"));
  CHECK(test::slurp(path) == "first");
  CHECK_THROWS_AS(io::write_file_atomic(path,
                                        [](std::ostream& out) {
                                          out << std::string(100000, 'x');
                                          throw std::runtime_error("stopped");
                                        }),
                  std::runtime_error);
  CHECK(test::slurp(path) == "first");
  io::write_file_atomic(path, [](std::ostream& out) { out << "second"; });
  CHECK(test::slurp(path) == "second");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.is_regular_file() ? 1 : 0;
  CHECK(files == 1);
  CHECK(test::message_of<FileError>([&] {
          io::write_file_atomic((dir / "no" / "such.txt").string(), std::string("x"));
        }).find("such.txt: cannot open a new file in") != std::string::npos);
}
