// Builds pickle bytes opcode by opcode for tests (torch-free).
//
// Thread-safety: plain functions.
#ifndef LVS_TESTS_IO_PICKLE_BUILDER_H_
#define LVS_TESTS_IO_PICKLE_BUILDER_H_

#include <cstdint>
#include <string>

namespace lvs::io::testing {

// `n` as `bytes` little-endian bytes.
inline std::string Le(uint64_t n, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>(n >> (8 * i)));
  return out;
}

// PROTO `v`.
inline std::string Proto(int v) { return "\x80" + Le(v, 1); }
// BINUNICODE `s`.
inline std::string Str(const std::string& s) {
  return "X" + Le(s.size(), 4) + s;
}
// BININT `v`.
inline std::string Int(int32_t v) {
  return "J" + Le(static_cast<uint32_t>(v), 4);
}
// GLOBAL `module name`.
inline std::string Global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}

// A pickled `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// False, OrderedDict())` for a 1- or 2-D tensor of storage `key` (`cls` is
// e.g. "FloatStorage" holding `numel` elements).
inline std::string Tensor(const std::string& cls, const std::string& key,
                          int64_t numel, int64_t offset,
                          const std::string& sizes_tuple,
                          const std::string& strides_tuple) {
  return Global("torch._utils", "_rebuild_tensor_v2") + "(" + "(" +
         Str("storage") + Global("torch", cls) + Str(key) + Str("cpu") +
         Int(static_cast<int32_t>(numel)) + "tQ" +
         Int(static_cast<int32_t>(offset)) + sizes_tuple + strides_tuple +
         "\x89" + Global("collections", "OrderedDict") + ")R" + "tR";
}

}  // namespace lvs::io::testing

#endif  // LVS_TESTS_IO_PICKLE_BUILDER_H_
