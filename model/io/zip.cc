#include "model/io/zip.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace lvs::io {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr size_t kZip64EocdSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint32_t kU32Max = 0xffffffffu;

uint64_t Le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bounds-checked little-endian reads over the archive bytes.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  bool Has(uint64_t offset, uint64_t n) const {
    return offset <= size_ && n <= size_ - offset;
  }
  uint64_t U16(uint64_t off) const { return Le(data_ + off, 2); }
  uint64_t U32(uint64_t off) const { return Le(data_ + off, 4); }
  uint64_t U64(uint64_t off) const { return Le(data_ + off, 8); }
  const uint8_t* At(uint64_t off) const { return data_ + off; }

 private:
  const uint8_t* data_;
  uint64_t size_;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t end_limit = 0;  // Where the directory must end.
};

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": invalid zip archive: ", what));
}

absl::Status BadEntry(const std::string& path, const std::string& entry,
                      absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": invalid zip archive: entry \"", entry, "\": ", what));
}

// Finds the end-of-central-directory record (and its zip64 form).
absl::StatusOr<Directory> FindDirectory(const Reader& r, uint64_t size,
                                        const std::string& path) {
  if (size < kEocdSize) {
    return Bad(path, "shorter than an end-of-central-directory record");
  }
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest =
      size - kEocdSize > 0xffff + 0ull ? size - kEocdSize - 0xffff : 0;
  for (uint64_t pos = size - kEocdSize + 1; pos-- > lowest;) {
    if (r.U32(pos) == kEocdSig && pos + kEocdSize + r.U16(pos + 20) == size) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX) {
    return Bad(path,
               "no end-of-central-directory record (not a zip archive "
               "or truncated; pre-1.6 torch.save files are not zips)");
  }
  if (r.U16(eocd + 4) != 0 || r.U16(eocd + 6) != 0) {
    return Bad(path, "multi-disk archives are not supported");
  }
  Directory dir;
  dir.entries = r.U16(eocd + 10);
  dir.size = r.U32(eocd + 12);
  dir.offset = r.U32(eocd + 16);
  dir.end_limit = eocd;
  if (eocd >= kZip64LocatorSize &&
      r.U32(eocd - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint64_t loc = eocd - kZip64LocatorSize;
    const uint64_t rec = r.U64(loc + 8);
    if (!r.Has(rec, kZip64EocdSize) || rec + kZip64EocdSize > loc) {
      return Bad(path, absl::StrCat("zip64 end-of-central-directory offset ",
                                    rec, " out of range"));
    }
    if (r.U32(rec) != kZip64EocdSig) {
      return Bad(path,
                 "zip64 end-of-central-directory record has a bad "
                 "signature");
    }
    dir.entries = r.U64(rec + 32);
    dir.size = r.U64(rec + 40);
    dir.offset = r.U64(rec + 48);
    dir.end_limit = rec;
  } else if (dir.entries == 0xffff || dir.size == kU32Max ||
             dir.offset == kU32Max) {
    return Bad(path, "zip64 sizes without a zip64 locator");
  }
  if (dir.offset > dir.end_limit || dir.size > dir.end_limit - dir.offset) {
    return Bad(path, absl::StrCat("central directory (offset ", dir.offset,
                                  ", ", dir.size,
                                  " bytes) runs past its end "
                                  "record at ",
                                  dir.end_limit, " (truncated?)"));
  }
  if (dir.entries > dir.size / kCentralSize) {
    return Bad(path, absl::StrCat(dir.entries, " entries cannot fit in a ",
                                  dir.size, "-byte central directory"));
  }
  return dir;
}

// Applies the zip64 extra field (id 1) of a central entry.
absl::Status ApplyZip64Extra(const Reader& r, uint64_t extra, uint64_t len,
                             uint64_t* usize, uint64_t* csize, uint64_t* offset,
                             const std::string& path, const std::string& name) {
  uint64_t p = extra;
  const uint64_t end = extra + len;
  while (p + 4 <= end) {
    const uint64_t id = r.U16(p), n = r.U16(p + 2);
    if (p + 4 + n > end) return BadEntry(path, name, "extra field overruns");
    if (id == 1) {
      uint64_t q = p + 4;
      for (uint64_t* field : {usize, csize, offset}) {
        if (*field != kU32Max) continue;
        if (q + 8 > p + 4 + n) {
          return BadEntry(path, name, "zip64 extra field too short");
        }
        *field = r.U64(q);
        q += 8;
      }
    }
    p += 4 + n;
  }
  return absl::OkStatus();
}

// Parses the central entry at `*pos` and its local header.
absl::StatusOr<ZipEntry> ParseEntry(const Reader& r, uint64_t* pos,
                                    uint64_t dir_end, uint64_t data_limit,
                                    const std::string& path,
                                    uint64_t* local_offset) {
  const uint64_t c = *pos;
  if (c + kCentralSize > dir_end || r.U32(c) != kCentralSig) {
    return Bad(path, absl::StrCat("bad central directory entry at ", c));
  }
  const uint64_t name_len = r.U16(c + 28), extra_len = r.U16(c + 30),
                 comment_len = r.U16(c + 32);
  if (c + kCentralSize + name_len + extra_len + comment_len > dir_end) {
    return Bad(path, absl::StrCat("central directory entry at ", c,
                                  " runs past the directory"));
  }
  ZipEntry e;
  e.name.assign(reinterpret_cast<const char*>(r.At(c + kCentralSize)),
                name_len);
  const uint64_t flags = r.U16(c + 8), method = r.U16(c + 10);
  if (flags & 1) return BadEntry(path, e.name, "encrypted entries unsupported");
  if (method != 0) {
    return BadEntry(path, e.name,
                    absl::StrCat("compression method ", method,
                                 " unsupported (torch.save stores entries)"));
  }
  e.crc32 = static_cast<uint32_t>(r.U32(c + 16));
  uint64_t csize = r.U32(c + 20), usize = r.U32(c + 24), offset = r.U32(c + 42);
  LVS_RETURN_IF_ERROR(ApplyZip64Extra(r, c + kCentralSize + name_len, extra_len,
                                      &usize, &csize, &offset, path, e.name));
  if (csize != usize) {
    return BadEntry(path, e.name,
                    absl::StrCat("bad entry size: stored size ", csize,
                                 " != uncompressed size ", usize));
  }
  *pos = c + kCentralSize + name_len + extra_len + comment_len;

  // The local header must agree with the central entry.
  if (!r.Has(offset, kLocalSize) || offset + kLocalSize > data_limit ||
      r.U32(offset) != kLocalSig) {
    return BadEntry(path, e.name,
                    absl::StrCat("no local header at offset ", offset));
  }
  const uint64_t lname = r.U16(offset + 26), lextra = r.U16(offset + 28);
  const uint64_t data = offset + kLocalSize + lname + lextra;
  if (data > data_limit) {
    return BadEntry(path, e.name, "local header runs past the entries");
  }
  if (lname != name_len ||
      !std::equal(e.name.begin(), e.name.end(),
                  reinterpret_cast<const char*>(r.At(offset + kLocalSize)))) {
    return BadEntry(path, e.name, "local header names another file");
  }
  if (r.U16(offset + 8) != 0) {
    return BadEntry(path, e.name, "local header is not STORED");
  }
  const uint64_t lsize = r.U32(offset + 22);
  const bool descriptor = (r.U16(offset + 6) & 8) != 0;
  if (lsize != kU32Max && !(descriptor && lsize == 0) && lsize != usize) {
    return BadEntry(path, e.name,
                    absl::StrCat("bad entry size: local header says ", lsize,
                                 " bytes, central directory ", usize));
  }
  if (usize > data_limit - data) {
    return BadEntry(
        path, e.name,
        absl::StrCat("bad entry size: ", usize, " bytes at offset ", data,
                     " run past the end of the entries (", data_limit, ")"));
  }
  e.data_offset = data;
  e.size = usize;
  *local_offset = offset;
  return e;
}

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

}  // namespace

uint32_t Crc32(const uint8_t* data, size_t size) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

absl::StatusOr<std::shared_ptr<const ZipArchive>> ZipArchive::Open(
    const std::string& path) {
  LVS_ASSIGN_OR_RETURN(std::shared_ptr<const ByteSource> source, MapFile(path));
  return Parse(std::move(source));
}

absl::StatusOr<std::shared_ptr<const ZipArchive>> ZipArchive::Parse(
    std::shared_ptr<const ByteSource> source) {
  const std::string& path = source->path();
  const Reader r(source->data(), source->size());
  LVS_ASSIGN_OR_RETURN(Directory dir, FindDirectory(r, source->size(), path));
  std::shared_ptr<ZipArchive> zip(new ZipArchive());
  zip->entries_.reserve(dir.entries);
  std::vector<std::pair<uint64_t, size_t>> spans;  // (local offset, index)
  uint64_t pos = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    uint64_t local = 0;
    LVS_ASSIGN_OR_RETURN(ZipEntry e, ParseEntry(r, &pos, dir.offset + dir.size,
                                                dir.offset, path, &local));
    if (!zip->index_.emplace(e.name, zip->entries_.size()).second) {
      return BadEntry(path, e.name, "appears twice");
    }
    spans.emplace_back(local, zip->entries_.size());
    zip->entries_.push_back(std::move(e));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const ZipEntry& prev = zip->entries_[spans[i - 1].second];
    if (spans[i].first < prev.data_offset + prev.size) {
      return BadEntry(path, zip->entries_[spans[i].second].name,
                      absl::StrCat("overlaps entry \"", prev.name, "\""));
    }
  }
  zip->source_ = std::move(source);
  return std::shared_ptr<const ZipArchive>(std::move(zip));
}

const ZipEntry* ZipArchive::Find(absl::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::Status ZipArchive::VerifyCrc(const ZipEntry& entry) const {
  const uint32_t crc = Crc32(data(entry), entry.size);
  if (crc != entry.crc32) {
    return BadEntry(path(), entry.name,
                    absl::StrCat("CRC-32 mismatch (stored ", entry.crc32,
                                 ", computed ", crc, ")"));
  }
  return absl::OkStatus();
}

}  // namespace lvs::io
