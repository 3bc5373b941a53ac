#include "model/common/torch_status.h"

#include <c10/util/Exception.h>
#include <torch/version.h>

#include <new>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

// c10::OutOfMemoryError (thrown by the CUDA caching allocator) exists from
// LibTorch 1.13 on.
#if TORCH_VERSION_MAJOR > 1 || \
    (TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR >= 13)
#define LVS_HAS_C10_OUT_OF_MEMORY_ERROR 1
#else
#define LVS_HAS_C10_OUT_OF_MEMORY_ERROR 0
#endif

namespace lvs::common {

bool IsOutOfMemoryMessage(absl::string_view message) {
  return absl::StrContains(message, "out of memory") ||
         absl::StrContains(message, "can't allocate memory") ||
         absl::StrContains(message, "not enough memory");
}

absl::Status TorchErrorToStatus(const std::exception& e,
                                absl::string_view what) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": out of host memory"));
  }
  bool out_of_memory = false;
  std::string message;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    message = c10_error->what_without_backtrace();
#if LVS_HAS_C10_OUT_OF_MEMORY_ERROR
    out_of_memory = dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr;
#endif
  } else {
    message = e.what();
  }
  out_of_memory = out_of_memory || IsOutOfMemoryMessage(message);
  const std::string text = absl::StrCat(what, ": ", message);
  return out_of_memory ? absl::ResourceExhaustedError(text)
                       : absl::InternalError(text);
}

}  // namespace lvs::common
