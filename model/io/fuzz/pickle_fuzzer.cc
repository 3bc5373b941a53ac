// libFuzzer target: the whitelisting pickle VM on arbitrary bytes, then the
// namespace-to-JSON conversion and its serialisation.
#include <cstdint>
#include <string>

#include "model/io/pickle.h"
#include "model/io/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = lvs::io::Unpickle(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz.pkl");
  if (!result.ok()) return 0;
  auto json = lvs::io::PickledArgsToJson(result->root(), "fuzz.pkl");
  if (json.ok()) (void)json->dump();
  return 0;
}
