// Well-formed UTF-8 (RFC 3629), the rule protobuf applies to proto3
// `string` fields: no overlong forms, no surrogates, nothing above
// U+10FFFF. Used by the CLI before sending text and by the server to name
// the field of a request that protobuf refused to parse.
//
// Thread-safety: pure function.
#ifndef LVS_COMMON_UTF8_H_
#define LVS_COMMON_UTF8_H_

#include "absl/strings/string_view.h"

namespace lvs {

// Whether `s` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view s);

}  // namespace lvs

#endif  // LVS_COMMON_UTF8_H_
