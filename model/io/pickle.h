// A whitelisting pickle virtual machine (torch-free) for the pickles that
// torch.save and argparse/types.SimpleNamespace checkpoints contain.
//
// It runs protocols 2 to 5 (binary opcodes only) and never executes code:
// GLOBAL/STACK_GLOBAL accept only the classes and functions named in
// `IsAllowedGlobal` (OrderedDict, torch._utils._rebuild_tensor_v2 and
// _rebuild_parameter, the torch.*Storage classes, torch.device,
// argparse.Namespace, types.SimpleNamespace, builtins.set/frozenset); any
// other global is an error naming it. REDUCE/NEWOBJ/BUILD are interpreted
// for those globals only, producing plain values: dicts, namespace objects,
// storage references (from BINPERSID `('storage', cls, key, location,
// numel)`) and tensor descriptions (from _rebuild_tensor_v2).
//
// Resource bounds: at most kMaxPickleDepth open MARKs and nested containers
// (so walking a result never recurses deeper), at most kMaxPickleStack stack
// entries and kMaxPickleValues values, lengths checked against the remaining
// input before any allocation, memo indices looked up (never used to size an
// allocation). Values live in an arena owned by the result, so cycles built
// through the memo neither leak nor recurse.
//
// Thread-safety: Unpickle is reentrant; a PickleResult is immutable.
#ifndef LVS_MODEL_IO_PICKLE_H_
#define LVS_MODEL_IO_PICKLE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/io/dtype.h"

namespace lvs::io {

// Deepest nesting of containers (and MARKs) a pickle may build.
inline constexpr int kMaxPickleDepth = 200;
// Most values the VM stack may hold at once (pickles batch 1000 items).
inline constexpr size_t kMaxPickleStack = 1 << 16;
// Most values one pickle may create (~50 MB; a 2B-parameter state dict
// needs ~10^4).
inline constexpr size_t kMaxPickleValues = 1 << 18;

// One Python value produced by the VM.
struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kTuple,
    kList,
    kSet,
    kDict,       // dict or collections.OrderedDict, in insertion order.
    kGlobal,     // A whitelisted class or function: `str` = "module.name".
    kNamespace,  // argparse.Namespace / types.SimpleNamespace: `str` = class.
    kStorage,    // A torch storage reference from a persistent id.
    kTensor,     // A torch._utils._rebuild_tensor_v2 result.
  };

  Kind kind = Kind::kNone;
  bool b = false;
  // kInt value; kStorage element count; kTensor storage offset.
  int64_t i = 0;
  double f = 0.0;
  // kStr/kBytes contents; kGlobal/kNamespace class; kStorage key.
  std::string str;
  // kTuple/kList/kSet elements; kTensor: items[0] is its kStorage.
  std::vector<PyValue*> items;
  // kDict entries and kNamespace attributes (later duplicates win).
  std::vector<std::pair<PyValue*, PyValue*>> entries;
  // kStorage element type.
  DType dtype = DType::kF32;
  // kStorage device ("cpu", "cuda:0", ...).
  std::string location;
  // kTensor sizes and strides (elements).
  std::vector<int64_t> sizes, strides;
  bool requires_grad = false;
  // Deepest nesting below this value (0 for scalars).
  int depth = 0;
  // Set once the value sits inside another value; it is then immutable.
  bool nested = false;

  // Returns the attribute or string-keyed entry `key` (last wins), or
  // nullptr. For kDict and kNamespace.
  const PyValue* Get(absl::string_view key) const;
};

// Returns a short name of `kind` ("dict", "tensor", ...) for error messages.
absl::string_view PyKindName(PyValue::Kind kind);

// The output of the VM: the root value plus the arena owning every value.
class PickleResult {
 public:
  const PyValue& root() const { return *root_; }

 private:
  friend class PickleVm;
  std::deque<PyValue> arena_;
  PyValue* root_ = nullptr;
};

// True when `module.name` is one of the globals the VM accepts.
bool IsAllowedGlobal(absl::string_view module, absl::string_view name);

// Runs the pickle in `bytes`. `source` (a file and entry) names the input in
// errors, which also give the byte offset and the opcode.
absl::StatusOr<PickleResult> Unpickle(absl::string_view bytes,
                                      const std::string& source);

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_PICKLE_H_
