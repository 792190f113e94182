// NumPy's .npz archives: a zip of .npy arrays, stored without compression, which numpy.load
// reads (and torch.from_numpy after it). Only the C++ standard library and Eigen are needed: the
// zip container is written and read here, with its CRC-32 checked.
//
// Writing is atomic (a temporary file renamed over the target). Reading checks every field of
// the archive and of each .npy header against the file's size, so a truncated or corrupt file is
// a FileError naming the file and what is wrong, never a crash or silent garbage.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "gumbel/io/file.hpp"
#include "gumbel/io/npy.hpp"

namespace gumbel {
namespace io {

namespace detail {

/// The CRC-32 of zip over `size` bytes, continuing from `crc` (the CRC of what came before).
inline std::uint32_t crc32(const char* data, std::size_t size, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc ^= 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xFFu] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace detail

/// Writes the arrays as an .npz that numpy.load reads (each becomes `name.npy`), atomically,
/// member by member from where they are (no copy of an array or of the whole archive in
/// memory). Names must be non-empty and unique.
inline void save_npz(const std::string& path, const std::vector<NpyView>& arrays) {
  if (!detail::little_endian())
    throw FileError(path + ": .npz is written on little-endian hosts only");
  std::vector<std::string> headers;
  std::size_t total = 0;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const NpyView& array = arrays[i];
    if (array.name.empty()) throw FileError(path + ": an array has an empty name");
    for (std::size_t j = 0; j < i; ++j) {
      if (arrays[j].name == array.name)
        throw FileError(path + ": two arrays are named " + array.name);
    }
    headers.push_back(detail::npy_header(array));
    const std::size_t member = array.name.size() + 4;
    const std::size_t size = headers.back().size() + array.size;
    total += 30 + member + size;
    if (size >= 0xFFFFFFFFull || total >= 0xFFFFFFFFull || member > 0xFFFF || i >= 0xFFFF) {
      throw FileError(path + ": the archive would need zip64 (an array of 4 GiB or more)");
    }
  }
  write_file_atomic(path, [&](std::ostream& out) {
    std::string directory, local;
    std::uint32_t offset = 0;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      const NpyView& array = arrays[i];
      const std::string member = array.name + ".npy";
      const std::string& header = headers[i];
      const auto size = std::uint32_t(header.size() + array.size);
      const std::uint32_t crc =
          detail::crc32(array.data, array.size, detail::crc32(header.data(), header.size()));
      // Local file header: version 2.0, no flags, stored, 1980-01-01 00:00.
      local.clear();
      detail::put32(local, 0x04034b50u);
      for (std::uint32_t v : {20u, 0u, 0u, 0u, 0x21u}) detail::put16(local, v);
      detail::put32(local, crc);
      detail::put32(local, size);
      detail::put32(local, size);
      detail::put16(local, std::uint32_t(member.size()));
      detail::put16(local, 0);
      local += member;
      local += header;
      out.write(local.data(), std::streamsize(local.size()));
      out.write(array.data, std::streamsize(array.size));
      // Its central directory entry.
      detail::put32(directory, 0x02014b50u);
      for (std::uint32_t v : {20u, 20u, 0u, 0u, 0u, 0x21u}) detail::put16(directory, v);
      detail::put32(directory, crc);
      detail::put32(directory, size);
      detail::put32(directory, size);
      detail::put16(directory, std::uint32_t(member.size()));
      for (int k = 0; k < 4; ++k) detail::put16(directory, 0);  // extra, comment, disk, internal
      detail::put32(directory, 0);                              // external attributes
      detail::put32(directory, offset);
      directory += member;
      offset += std::uint32_t(30 + member.size()) + size;
    }
    const auto entries = std::uint32_t(arrays.size());
    detail::put32(directory, 0x06054b50u);
    detail::put16(directory, 0);
    detail::put16(directory, 0);
    detail::put16(directory, entries);
    detail::put16(directory, entries);
    detail::put32(directory, std::uint32_t(directory.size() - 12));
    detail::put32(directory, offset);
    detail::put16(directory, 0);
    out.write(directory.data(), std::streamsize(directory.size()));
  });
}

/// The same for arrays held in memory.
inline void save_npz(const std::string& path, const std::vector<NpyArray>& arrays) {
  std::vector<NpyView> views;
  views.reserve(arrays.size());
  for (const NpyArray& a : arrays) views.push_back(view_of(a));
  save_npz(path, views);
}

/// Every array of the .npz file whose contents are `bytes` (errors name `path`): see load_npz.
inline std::vector<NpyArray> parse_npz(const std::string& path, const std::string& bytes) {
  if (!detail::little_endian())
    throw FileError(path + ": .npz is read on little-endian hosts only");
  const detail::Reader r(path, bytes);
  if (bytes.size() < 22) r.fail("not a zip archive (" + std::to_string(bytes.size()) + " bytes)");
  // The end-of-central-directory record: the last signature within the final 64 KiB + 22.
  std::size_t eocd = std::string::npos;
  const std::size_t lowest = bytes.size() > 65557 ? bytes.size() - 65557 : 0;
  for (std::size_t at = bytes.size() - 22 + 1; at-- > lowest;) {
    if (r.u32(at) == 0x06054b50u) {
      eocd = at;
      break;
    }
  }
  if (eocd == std::string::npos) r.fail("not a zip archive (no end-of-central-directory record)");
  const std::uint32_t entries = r.u16(eocd + 10);
  const std::uint32_t directory_size = r.u32(eocd + 12);
  const std::uint32_t directory_at = r.u32(eocd + 16);
  if (entries == 0xFFFF || directory_at == 0xFFFFFFFFu) r.fail("zip64 archives are not supported");
  r.need(directory_at, directory_size, "the central directory");
  // Every entry's fields first, so that members whose bytes overlap (a directory pointing many
  // entries at one large member) are refused before anything is copied.
  struct Entry {
    std::string member;
    std::uint32_t crc;
    std::size_t begin, data_at, end;  // local header, data, one past the data
  };
  std::vector<Entry> members;
  std::size_t at = directory_at;
  for (std::uint32_t e = 0; e < entries; ++e) {
    if (r.u32(at) != 0x02014b50u) r.fail("corrupt central directory entry " + std::to_string(e));
    const std::uint32_t flags = r.u16(at + 8);
    const std::uint32_t method = r.u16(at + 10);
    const std::uint32_t crc = r.u32(at + 16);
    const std::uint32_t packed = r.u32(at + 20);
    const std::uint32_t size = r.u32(at + 24);
    const std::uint32_t name_len = r.u16(at + 28);
    const std::uint32_t extra_len = r.u16(at + 30);
    const std::uint32_t comment_len = r.u16(at + 32);
    const std::uint32_t local = r.u32(at + 42);
    std::string member = r.str(at + 46, name_len, "a member's name");
    at += 46 + std::size_t(name_len) + extra_len + comment_len;
    if (method != 0) {
      r.fail(member + " is compressed (method " + std::to_string(method) +
             "): only stored members are read; write it with numpy.savez, not savez_compressed");
    }
    if ((flags & 1u) != 0) r.fail(member + " is encrypted");
    if (packed != size) r.fail(member + ": stored sizes disagree");
    if (r.u32(local) != 0x04034b50u) r.fail(member + ": corrupt local header");
    const std::size_t data_at =
        std::size_t(local) + 30 + r.u16(local + 26) + std::size_t(r.u16(local + 28));
    r.need(data_at, size, "a member's data");
    if (member.size() < 5 || member.compare(member.size() - 4, 4, ".npy") != 0) {
      r.fail(member + ": not an .npy member");
    }
    members.push_back({std::move(member), crc, local, data_at, data_at + size});
  }
  std::vector<const Entry*> by_place;
  for (const Entry& m : members) by_place.push_back(&m);
  std::sort(by_place.begin(), by_place.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (std::size_t i = 1; i < by_place.size(); ++i) {
    if (by_place[i]->begin < by_place[i - 1]->end) {
      r.fail("the members " + by_place[i - 1]->member + " and " + by_place[i]->member +
             " overlap in the file (a zip whose entries share bytes is refused)");
    }
  }
  std::vector<NpyArray> arrays;
  for (const Entry& m : members) {
    const std::string data = bytes.substr(m.data_at, m.end - m.data_at);
    if (detail::crc32(data.data(), data.size()) != m.crc) r.fail(m.member + ": CRC-32 mismatch");
    NpyArray a = detail::parse_npy(r, m.member, data);
    a.name = m.member.substr(0, m.member.size() - 4);
    arrays.push_back(std::move(a));
  }
  return arrays;
}

/// Every array of an .npz written by save_npz or numpy.savez (stored members; the deflated ones
/// of numpy.savez_compressed are a FileError saying so), in the archive's order.
inline std::vector<NpyArray> load_npz(const std::string& path) {
  return parse_npz(path, detail::read_all(path));
}

}  // namespace io
}  // namespace gumbel
