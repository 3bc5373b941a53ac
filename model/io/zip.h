// Read-only zip archives as torch.save writes them (torch-free).
//
// Only STORED (uncompressed, unencrypted) entries are accepted, which is all
// torch.save produces. Parsing validates the end-of-central-directory record
// (and its zip64 form), every central-directory entry, the local header it
// points to (signature, name, method, sizes), zip64 extra fields, and that
// every entry's bytes lie before the central directory without overlapping
// another entry. Entry bytes are not copied: they point into the source.
//
// Thread-safety: a ZipArchive is immutable after Parse(); share freely.
#ifndef LVS_MODEL_IO_ZIP_H_
#define LVS_MODEL_IO_ZIP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/io/mapped_file.h"

namespace lvs::io {

// One stored file of an archive.
struct ZipEntry {
  std::string name;
  // Offset of the entry's bytes in the archive (after its local header).
  uint64_t data_offset = 0;
  uint64_t size = 0;
  // CRC-32 recorded in the central directory.
  uint32_t crc32 = 0;
};

// A parsed archive.
class ZipArchive {
 public:
  // Maps and parses `path`. Errors name the file (and entry) and the problem.
  static absl::StatusOr<std::shared_ptr<const ZipArchive>> Open(
      const std::string& path);

  // Parses bytes already in memory (used by the fuzzer and tests).
  static absl::StatusOr<std::shared_ptr<const ZipArchive>> Parse(
      std::shared_ptr<const ByteSource> source);

  // Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }

  // Returns the entry named `name`, or nullptr.
  const ZipEntry* Find(absl::string_view name) const;

  // Returns a pointer to the entry's bytes (valid while source() lives).
  const uint8_t* data(const ZipEntry& entry) const {
    return source_->data() + entry.data_offset;
  }

  // Checks the entry's bytes against its recorded CRC-32.
  absl::Status VerifyCrc(const ZipEntry& entry) const;

  const std::shared_ptr<const ByteSource>& source() const { return source_; }
  const std::string& path() const { return source_->path(); }

 private:
  ZipArchive() = default;

  std::shared_ptr<const ByteSource> source_;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t> index_;
};

// Returns the CRC-32 (ISO-HDLC, as zip uses) of `size` bytes at `data`.
uint32_t Crc32(const uint8_t* data, size_t size);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_ZIP_H_
