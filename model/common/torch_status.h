// Conversion of the exceptions LibTorch throws into absl::Status, for the
// try/catch at every model API boundary. Out of memory (a c10 allocator
// error, c10::OutOfMemoryError or std::bad_alloc) becomes RESOURCE_EXHAUSTED
// so that callers can back off or fall back; anything else becomes INTERNAL.
// Messages read "<what>: <exception text>".
//
// Thread-safety: stateless; safe from any thread.
#ifndef LVS_MODEL_COMMON_TORCH_STATUS_H_
#define LVS_MODEL_COMMON_TORCH_STATUS_H_

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lvs::common {

// Returns whether an exception text is an allocator's out-of-memory report
// (CUDA "out of memory", the CPU allocator's "can't allocate memory" and
// "not enough memory").
bool IsOutOfMemoryMessage(absl::string_view message);

// Converts `e`, caught while doing `what` (e.g. "VAE decode"), into a
// Status: RESOURCE_EXHAUSTED for out of memory ("<what>: out of host memory"
// for std::bad_alloc), INTERNAL otherwise. A c10::Error contributes its text
// without the C++ backtrace. Never returns OK.
absl::Status TorchErrorToStatus(const std::exception& e,
                                absl::string_view what);

}  // namespace lvs::common

#endif  // LVS_MODEL_COMMON_TORCH_STATUS_H_
