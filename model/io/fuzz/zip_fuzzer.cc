// libFuzzer target: the zip reader and the torch.save archive layer on
// arbitrary bytes. Small entries are CRC-checked (reading all their bytes);
// every accepted storage's last byte is read.
#include <cstdint>
#include <vector>

#include "model/io/torch_pickle.h"
#include "model/io/zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto zip = lvs::io::ZipArchive::Parse(
      lvs::io::OwnedBytes(std::vector<uint8_t>(data, data + size), "fuzz.pth"));
  if (!zip.ok()) return 0;
  for (const lvs::io::ZipEntry& e : (*zip)->entries()) {
    if (e.size <= 65536) (void)(*zip)->VerifyCrc(e);
  }
  auto archive = lvs::io::ParseTorchArchive(*zip);
  if (!archive.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [key, s] : archive->storages) {
    if (s.entry->size > 0) {
      sink = sink ^ (*zip)->data(*s.entry)[s.entry->size - 1];
    }
  }
  return 0;
}
