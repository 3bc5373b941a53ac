#include "model/io/pickle.h"

#include <cstring>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/io/pickle_opcodes.h"
#include "model/io/pickle_vm.h"

namespace lvs::io {

using Kind = PyValue::Kind;

namespace {

struct StorageClass {
  absl::string_view name;
  DType dtype;
};

constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", DType::kF32}, {"DoubleStorage", DType::kF64},
    {"HalfStorage", DType::kF16},  {"BFloat16Storage", DType::kBF16},
    {"LongStorage", DType::kI64},  {"IntStorage", DType::kI32},
    {"ShortStorage", DType::kI16}, {"CharStorage", DType::kI8},
    {"ByteStorage", DType::kU8},   {"BoolStorage", DType::kBool},
};

constexpr absl::string_view kCallables[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.device",
    "argparse.Namespace",
    "types.SimpleNamespace",
    "builtins.set",
    "builtins.frozenset",
};

const StorageClass* FindStorageClass(absl::string_view global) {
  for (const StorageClass& c : kStorageClasses) {
    if (global == absl::StrCat("torch.", c.name)) return &c;
  }
  return nullptr;
}

// Strict UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), as JSON serialisation later requires.
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n >= s.size() - i) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto t = static_cast<uint8_t>(s[i + k]);
      if ((t & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

const PyValue* PyValue::Get(absl::string_view key) const {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (it->first->kind == Kind::kStr && it->first->str == key) {
      return it->second;
    }
  }
  return nullptr;
}

absl::string_view PyKindName(Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kSet:
      return "set";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kNamespace:
      return "namespace";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

bool IsAllowedGlobal(absl::string_view module, absl::string_view name) {
  const std::string full = absl::StrCat(module, ".", name);
  for (absl::string_view c : kCallables) {
    if (c == full) return true;
  }
  return FindStorageClass(full) != nullptr;
}

absl::Status PickleVm::Err(absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: invalid pickle at byte %d (opcode 0x%02x %s): %s",
                      source_, op_pos_, op_, PickleOpcodeName(op_), what));
}

absl::Status PickleVm::Need(uint64_t n) const {
  if (n > in_.size() - pos_) {
    return Err(absl::StrCat("needs ", n, " bytes but only ", in_.size() - pos_,
                            " remain (truncated?)"));
  }
  return absl::OkStatus();
}

uint64_t PickleVm::ReadLe(int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<uint8_t>(in_[pos_ + i]);
  }
  pos_ += n;
  return v;
}

absl::StatusOr<std::string> PickleVm::ReadLine() {
  size_t nl = in_.find('\n', pos_);
  if (nl == absl::string_view::npos || nl - pos_ > 256) {
    return Err("GLOBAL name not terminated by a newline within 256 bytes");
  }
  std::string line(in_.substr(pos_, nl - pos_));
  pos_ = nl + 1;
  return line;
}

PyValue* PickleVm::New(Kind kind) {
  PyValue& v = result_.arena_.emplace_back();
  v.kind = kind;
  return &v;
}

absl::Status PickleVm::Push(PyValue* v) {
  if (stack_.size() >= kMaxPickleStack) {
    return Err(absl::StrCat("stack deeper than ", kMaxPickleStack));
  }
  stack_.push_back(v);
  return absl::OkStatus();
}

absl::StatusOr<PyValue*> PickleVm::Pop() {
  if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size())) {
    return Err("stack underflow");
  }
  PyValue* v = stack_.back();
  stack_.pop_back();
  return v;
}

absl::StatusOr<PyValue*> PickleVm::Peek() const {
  if (stack_.empty() || (!marks_.empty() && marks_.back() == stack_.size())) {
    return Err("stack underflow");
  }
  return stack_.back();
}

absl::StatusOr<std::vector<PyValue*>> PickleVm::PopMark() {
  if (marks_.empty()) return Err("no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PyValue*> items(stack_.begin() + mark, stack_.end());
  stack_.resize(mark);
  return items;
}

absl::Status PickleVm::AddChild(PyValue* parent, PyValue* child) {
  if (child == parent) return Err("a container cannot contain itself");
  child->nested = true;
  if (child->depth + 1 > parent->depth) parent->depth = child->depth + 1;
  if (parent->depth > kMaxPickleDepth) {
    return Err(absl::StrCat("values nested deeper than ", kMaxPickleDepth));
  }
  return absl::OkStatus();
}

// Returns the stack top if it is a `kind` that may still be changed.
absl::StatusOr<PyValue*> PickleVm::Mutable(Kind kind) {
  LVS_ASSIGN_OR_RETURN(PyValue * v, Peek());
  if (v->kind != kind) {
    return Err(absl::StrCat("expects a ", PyKindName(kind), ", found a ",
                            PyKindName(v->kind)));
  }
  if (v->nested) {
    return Err(absl::StrCat("changes a ", PyKindName(kind),
                            " already nested in another value (recursive "
                            "structures are not supported)"));
  }
  return v;
}

absl::Status PickleVm::PushInt(int64_t value) {
  PyValue* v = New(Kind::kInt);
  v->i = value;
  return Push(v);
}

absl::Status PickleVm::PushString(Kind kind, uint64_t n) {
  LVS_RETURN_IF_ERROR(Need(n));
  PyValue* v = New(kind);
  v->str.assign(in_.data() + pos_, n);
  pos_ += n;
  if (kind == Kind::kStr && !IsValidUtf8(v->str)) {
    return Err("string is not valid UTF-8");
  }
  return Push(v);
}

absl::Status PickleVm::PushLong(uint64_t n) {
  LVS_RETURN_IF_ERROR(Need(n));
  if (n > 8) return Err(absl::StrCat(n, "-byte integer exceeds 64 bits"));
  uint64_t v = 0;
  for (uint64_t i = 0; i < n; ++i) {
    v |= uint64_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
  }
  if (n > 0 && n < 8 && (static_cast<uint8_t>(in_[pos_ + n - 1]) & 0x80)) {
    v |= ~uint64_t{0} << (8 * n);  // Sign-extend.
  }
  pos_ += n;
  return PushInt(static_cast<int64_t>(v));
}

absl::Status PickleVm::PushSequence(Kind kind,
                                    const std::vector<PyValue*>& items) {
  PyValue* v = New(kind);
  for (PyValue* item : items) LVS_RETURN_IF_ERROR(AddChild(v, item));
  v->items = items;
  return Push(v);
}

absl::Status PickleVm::SetItems(PyValue* dict,
                                const std::vector<PyValue*>& kv) {
  if (kv.size() % 2 != 0) return Err("odd number of items for a dict");
  for (size_t i = 0; i < kv.size(); i += 2) {
    LVS_RETURN_IF_ERROR(AddChild(dict, kv[i]));
    LVS_RETURN_IF_ERROR(AddChild(dict, kv[i + 1]));
    dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  return absl::OkStatus();
}

absl::Status PickleVm::PushGlobal(const std::string& module,
                                  const std::string& name) {
  if (!IsAllowedGlobal(module, name)) {
    return Err(absl::StrCat("global '", module, " ", name,
                            "' is not allowed (only torch tensors, storages, "
                            "OrderedDict and argparse/SimpleNamespace load)"));
  }
  PyValue* v = New(Kind::kGlobal);
  v->str = absl::StrCat(module, ".", name);
  return Push(v);
}

absl::StatusOr<PyValue*> PickleVm::RebuildTensor(
    const std::vector<PyValue*>& a) {
  if (a.size() < 6 || a.size() > 7) {
    return Err(absl::StrCat("_rebuild_tensor_v2 takes 6 or 7 arguments, got ",
                            a.size()));
  }
  if (a[0]->kind != Kind::kStorage || a[1]->kind != Kind::kInt ||
      a[2]->kind != Kind::kTuple || a[3]->kind != Kind::kTuple ||
      a[4]->kind != Kind::kBool) {
    return Err(
        "_rebuild_tensor_v2 arguments are not (storage, int, tuple, "
        "tuple, bool, ...)");
  }
  if (a[2]->items.size() != a[3]->items.size()) {
    return Err("_rebuild_tensor_v2 size and stride differ in length");
  }
  if (a[1]->i < 0) return Err("negative storage offset");
  PyValue* t = New(Kind::kTensor);
  for (size_t d = 0; d < a[2]->items.size(); ++d) {
    const PyValue* size = a[2]->items[d];
    const PyValue* stride = a[3]->items[d];
    if (size->kind != Kind::kInt || stride->kind != Kind::kInt || size->i < 0 ||
        stride->i < 0) {
      return Err("tensor sizes and strides must be non-negative ints");
    }
    t->sizes.push_back(size->i);
    t->strides.push_back(stride->i);
  }
  LVS_RETURN_IF_ERROR(AddChild(t, a[0]));
  t->items.push_back(a[0]);
  t->i = a[1]->i;
  t->requires_grad = a[4]->b;
  return t;
}

absl::StatusOr<PyValue*> PickleVm::Call(PyValue* callable, PyValue* args) {
  if (callable->kind != Kind::kGlobal) {
    return Err(absl::StrCat("calls a ", PyKindName(callable->kind)));
  }
  if (args->kind != Kind::kTuple) return Err("call arguments are not a tuple");
  const std::string& f = callable->str;
  const std::vector<PyValue*>& a = args->items;
  args->nested = true;
  if (f == "torch._utils._rebuild_tensor_v2") return RebuildTensor(a);
  if (f == "torch._utils._rebuild_parameter") {
    if (a.size() != 3 || a[0]->kind != Kind::kTensor ||
        a[1]->kind != Kind::kBool) {
      return Err("_rebuild_parameter arguments are not (tensor, bool, hooks)");
    }
    PyValue* t = New(Kind::kTensor);
    *t = *a[0];
    t->nested = false;
    t->requires_grad = a[1]->b;
    return t;
  }
  if (f == "collections.OrderedDict" && a.empty()) return New(Kind::kDict);
  if ((f == "argparse.Namespace" || f == "types.SimpleNamespace") &&
      a.empty()) {
    PyValue* ns = New(Kind::kNamespace);
    ns->str = f;
    return ns;
  }
  if (f == "builtins.set" || f == "builtins.frozenset") {
    PyValue* s = New(Kind::kSet);
    if (a.size() == 1 &&
        (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple ||
         a[0]->kind == Kind::kSet)) {
      for (PyValue* item : a[0]->items) {
        LVS_RETURN_IF_ERROR(AddChild(s, item));
      }
      s->items = a[0]->items;
    } else if (!a.empty()) {
      return Err(absl::StrCat(f, " takes one sequence"));
    }
    return s;
  }
  if (f == "torch.device" && !a.empty() && a.size() <= 2 &&
      a[0]->kind == Kind::kStr && (a.size() == 1 || a[1]->kind == Kind::kInt)) {
    PyValue* s = New(Kind::kStr);
    s->str = a.size() == 1 ? a[0]->str : absl::StrCat(a[0]->str, ":", a[1]->i);
    return s;
  }
  return Err(absl::StrCat("unsupported call of ", f, " with ", a.size(),
                          " arguments"));
}

absl::Status PickleVm::Build() {
  LVS_ASSIGN_OR_RETURN(PyValue * state, Pop());
  LVS_ASSIGN_OR_RETURN(PyValue * obj, Peek());
  state->nested = true;
  // State may be (dict or None, slot dict or None).
  std::vector<PyValue*> parts = {state};
  if (state->kind == Kind::kTuple && state->items.size() == 2) {
    parts = state->items;
  }
  for (PyValue* part : parts) {
    if (part->kind != Kind::kDict && part->kind != Kind::kNone) {
      return Err(absl::StrCat("BUILD state is a ", PyKindName(part->kind)));
    }
  }
  if (obj->kind == Kind::kDict) return absl::OkStatus();  // `_metadata` etc.
  if (obj->kind != Kind::kNamespace) {
    return Err(absl::StrCat("BUILD on a ", PyKindName(obj->kind)));
  }
  LVS_ASSIGN_OR_RETURN(PyValue * ns, Mutable(Kind::kNamespace));
  for (PyValue* part : parts) {
    for (const auto& [k, v] : part->entries) {
      if (k->kind != Kind::kStr) return Err("attribute name is not a str");
      LVS_RETURN_IF_ERROR(AddChild(ns, v));
      ns->entries.emplace_back(k, v);
    }
  }
  return absl::OkStatus();
}

absl::Status PickleVm::PersistentLoad() {
  LVS_ASSIGN_OR_RETURN(PyValue * pid, Pop());
  const std::vector<PyValue*>& a = pid->items;
  if (pid->kind != Kind::kTuple || a.size() != 5 || a[0]->kind != Kind::kStr ||
      a[0]->str != "storage" || a[1]->kind != Kind::kGlobal ||
      a[2]->kind != Kind::kStr || a[3]->kind != Kind::kStr ||
      a[4]->kind != Kind::kInt) {
    return Err(
        "persistent id is not ('storage', class, key, location, "
        "numel)");
  }
  const StorageClass* cls = FindStorageClass(a[1]->str);
  if (cls == nullptr) return Err(absl::StrCat(a[1]->str, " is not a storage"));
  if (a[4]->i < 0) return Err("negative storage size");
  pid->nested = true;
  PyValue* s = New(Kind::kStorage);
  s->dtype = cls->dtype;
  s->str = a[2]->str;
  s->location = a[3]->str;
  s->i = a[4]->i;
  return Push(s);
}

absl::Status PickleVm::Memo(uint64_t index) {
  LVS_ASSIGN_OR_RETURN(memo_[index], Peek());
  return absl::OkStatus();
}

absl::Status PickleVm::Get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) {
    return Err(absl::StrCat("memo index ", index, " was never stored"));
  }
  return Push(it->second);
}

absl::StatusOr<PickleResult> PickleVm::Run() {
  bool stop = false;
  while (!stop) {
    op_pos_ = pos_;
    if (pos_ >= in_.size()) {
      op_ = 0;
      return Err("input ends before STOP (truncated?)");
    }
    op_ = static_cast<uint8_t>(in_[pos_++]);
    LVS_RETURN_IF_ERROR(Step(op_, &stop));
    if (result_.arena_.size() > kMaxPickleValues) {
      return Err(absl::StrCat("more than ", kMaxPickleValues, " values"));
    }
  }
  if (stack_.size() != 1 || !marks_.empty()) {
    return Err(absl::StrCat("STOP with ", stack_.size(),
                            " values on the stack and ", marks_.size(),
                            " open MARKs (expected one value)"));
  }
  result_.root_ = stack_.back();
  return std::move(result_);
}

absl::StatusOr<PickleResult> Unpickle(absl::string_view bytes,
                                      const std::string& source) {
  PickleVm vm(bytes, source);
  return vm.Run();
}

}  // namespace lvs::io
