// libFuzzer target: the safetensors header parser on arbitrary bytes.
// Every accepted tensor's first and last byte is read, so ASan catches any
// range the parser let past the end of the input.
#include <cstdint>
#include <vector>

#include "model/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = lvs::io::SafetensorsFile::Parse(lvs::io::OwnedBytes(
      std::vector<uint8_t>(data, data + size), "fuzz.safetensors"));
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const lvs::io::TensorRecord& t : (*file)->tensors()) {
    if (t.nbytes > 0) sink = sink ^ t.data[0] ^ t.data[t.nbytes - 1];
    (void)t.numel();
  }
  return 0;
}
