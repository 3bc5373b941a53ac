#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/io/pickle_opcodes.h"
#include "model/io/pickle_vm.h"

namespace lvs::io {

using Kind = PyValue::Kind;

absl::Status PickleVm::Step(uint8_t op, bool* stop) {
  namespace o = pickle_op;
  switch (op) {
    case o::kProto: {
      LVS_RETURN_IF_ERROR(Need(1));
      const uint64_t version = ReadLe(1);
      if (version < 2 || version > 5) {
        return Err(absl::StrCat("protocol ", version, " unsupported (2-5)"));
      }
      return absl::OkStatus();
    }
    case o::kFrame: {
      LVS_RETURN_IF_ERROR(Need(8));
      const uint64_t n = ReadLe(8);
      if (n > in_.size() - pos_) return Err("frame runs past the end");
      return absl::OkStatus();
    }
    case o::kStop:
      *stop = true;
      return absl::OkStatus();
    case o::kMark:
      if (marks_.size() >= static_cast<size_t>(kMaxPickleDepth)) {
        return Err(absl::StrCat("more than ", kMaxPickleDepth, " open MARKs"));
      }
      marks_.push_back(stack_.size());
      return absl::OkStatus();
    case o::kPop:
      if (!marks_.empty() && marks_.back() == stack_.size()) {
        marks_.pop_back();
        return absl::OkStatus();
      }
      return Pop().status();
    case o::kPopMark:
      return PopMark().status();
    case o::kDup: {
      LVS_ASSIGN_OR_RETURN(PyValue * top, Peek());
      return Push(top);
    }
    case o::kNone:
      return Push(New(Kind::kNone));
    case o::kNewTrue:
    case o::kNewFalse: {
      PyValue* v = New(Kind::kBool);
      v->b = op == o::kNewTrue;
      return Push(v);
    }
    case o::kBinInt:
      LVS_RETURN_IF_ERROR(Need(4));
      return PushInt(static_cast<int32_t>(ReadLe(4)));
    case o::kBinInt1:
      LVS_RETURN_IF_ERROR(Need(1));
      return PushInt(static_cast<int64_t>(ReadLe(1)));
    case o::kBinInt2:
      LVS_RETURN_IF_ERROR(Need(2));
      return PushInt(static_cast<int64_t>(ReadLe(2)));
    case o::kLong1:
      LVS_RETURN_IF_ERROR(Need(1));
      return PushLong(ReadLe(1));
    case o::kLong4: {
      LVS_RETURN_IF_ERROR(Need(4));
      const int32_t n = static_cast<int32_t>(ReadLe(4));
      if (n < 0) return Err("negative LONG4 length");
      return PushLong(static_cast<uint64_t>(n));
    }
    case o::kBinFloat: {
      LVS_RETURN_IF_ERROR(Need(8));
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) {
        bits = (bits << 8) | static_cast<uint8_t>(in_[pos_ + i]);
      }
      pos_ += 8;
      PyValue* v = New(Kind::kFloat);
      std::memcpy(&v->f, &bits, 8);
      return Push(v);
    }
    case o::kShortBinUnicode:
    case o::kShortBinString:
    case o::kShortBinBytes:
      LVS_RETURN_IF_ERROR(Need(1));
      return PushString(op == o::kShortBinBytes ? Kind::kBytes : Kind::kStr,
                        ReadLe(1));
    case o::kBinUnicode:
    case o::kBinBytes:
      LVS_RETURN_IF_ERROR(Need(4));
      return PushString(op == o::kBinBytes ? Kind::kBytes : Kind::kStr,
                        ReadLe(4));
    case o::kBinString: {
      LVS_RETURN_IF_ERROR(Need(4));
      const int32_t n = static_cast<int32_t>(ReadLe(4));
      if (n < 0) return Err("negative BINSTRING length");
      return PushString(Kind::kStr, static_cast<uint64_t>(n));
    }
    case o::kBinUnicode8:
    case o::kBinBytes8:
      LVS_RETURN_IF_ERROR(Need(8));
      return PushString(op == o::kBinBytes8 ? Kind::kBytes : Kind::kStr,
                        ReadLe(8));
    case o::kEmptyTuple:
      return PushSequence(Kind::kTuple, {});
    case o::kTuple1:
    case o::kTuple2:
    case o::kTuple3: {
      const size_t n = op - o::kTuple1 + 1;
      std::vector<PyValue*> items(n);
      for (size_t k = n; k-- > 0;) {
        LVS_ASSIGN_OR_RETURN(items[k], Pop());
      }
      return PushSequence(Kind::kTuple, items);
    }
    case o::kTuple:
    case o::kList:
    case o::kFrozenSet: {
      LVS_ASSIGN_OR_RETURN(std::vector<PyValue*> items, PopMark());
      return PushSequence(op == o::kTuple  ? Kind::kTuple
                          : op == o::kList ? Kind::kList
                                           : Kind::kSet,
                          items);
    }
    case o::kEmptyList:
      return Push(New(Kind::kList));
    case o::kEmptySet:
      return Push(New(Kind::kSet));
    case o::kEmptyDict:
      return Push(New(Kind::kDict));
    case o::kAppend: {
      LVS_ASSIGN_OR_RETURN(PyValue * item, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * list, Mutable(Kind::kList));
      LVS_RETURN_IF_ERROR(AddChild(list, item));
      list->items.push_back(item);
      return absl::OkStatus();
    }
    case o::kAppends:
    case o::kAddItems: {
      LVS_ASSIGN_OR_RETURN(std::vector<PyValue*> items, PopMark());
      LVS_ASSIGN_OR_RETURN(
          PyValue * seq, Mutable(op == o::kAppends ? Kind::kList : Kind::kSet));
      for (PyValue* item : items) LVS_RETURN_IF_ERROR(AddChild(seq, item));
      seq->items.insert(seq->items.end(), items.begin(), items.end());
      return absl::OkStatus();
    }
    case o::kDict: {
      LVS_ASSIGN_OR_RETURN(std::vector<PyValue*> kv, PopMark());
      PyValue* dict = New(Kind::kDict);
      LVS_RETURN_IF_ERROR(SetItems(dict, kv));
      return Push(dict);
    }
    case o::kSetItem: {
      LVS_ASSIGN_OR_RETURN(PyValue * value, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * key, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * dict, Mutable(Kind::kDict));
      return SetItems(dict, {key, value});
    }
    case o::kSetItems: {
      LVS_ASSIGN_OR_RETURN(std::vector<PyValue*> kv, PopMark());
      LVS_ASSIGN_OR_RETURN(PyValue * dict, Mutable(Kind::kDict));
      return SetItems(dict, kv);
    }
    case o::kGlobal: {
      LVS_ASSIGN_OR_RETURN(std::string module, ReadLine());
      LVS_ASSIGN_OR_RETURN(std::string name, ReadLine());
      return PushGlobal(module, name);
    }
    case o::kStackGlobal: {
      LVS_ASSIGN_OR_RETURN(PyValue * name, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * module, Pop());
      if (name->kind != Kind::kStr || module->kind != Kind::kStr) {
        return Err("STACK_GLOBAL needs two strings");
      }
      return PushGlobal(module->str, name->str);
    }
    case o::kReduce:
    case o::kNewObj: {
      LVS_ASSIGN_OR_RETURN(PyValue * args, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * callable, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * v, Call(callable, args));
      return Push(v);
    }
    case o::kNewObjEx: {
      LVS_ASSIGN_OR_RETURN(PyValue * kwargs, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * args, Pop());
      LVS_ASSIGN_OR_RETURN(PyValue * cls, Pop());
      if (kwargs->kind != Kind::kDict || !kwargs->entries.empty()) {
        return Err("NEWOBJ_EX with keyword arguments is unsupported");
      }
      LVS_ASSIGN_OR_RETURN(PyValue * v, Call(cls, args));
      return Push(v);
    }
    case o::kBuild:
      return Build();
    case o::kBinPersId:
      return PersistentLoad();
    case o::kBinPut:
      LVS_RETURN_IF_ERROR(Need(1));
      return Memo(ReadLe(1));
    case o::kLongBinPut:
      LVS_RETURN_IF_ERROR(Need(4));
      return Memo(ReadLe(4));
    case o::kMemoize:
      return Memo(memo_.size());
    case o::kBinGet:
      LVS_RETURN_IF_ERROR(Need(1));
      return Get(ReadLe(1));
    case o::kLongBinGet:
      LVS_RETURN_IF_ERROR(Need(4));
      return Get(ReadLe(4));
    default:
      return Err(PickleOpcodeName(op) == "unknown"
                     ? "unknown opcode"
                     : "opcode not supported by this loader");
  }
}

}  // namespace lvs::io
