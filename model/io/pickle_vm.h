// The pickle interpreter behind Unpickle (internal to model/io; include
// model/io/pickle.h instead). Its methods live in pickle.cc (stack, memo,
// calls of whitelisted globals) and pickle_step.cc (opcode dispatch).
//
// Thread-safety: one instance runs one pickle on one thread.
#ifndef LVS_MODEL_IO_PICKLE_VM_H_
#define LVS_MODEL_IO_PICKLE_VM_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/io/pickle.h"

namespace lvs::io {

// The interpreter; one instance runs one pickle.
class PickleVm {
 public:
  PickleVm(absl::string_view in, const std::string& source)
      : in_(in), source_(source) {}

  // Runs the pickle to STOP; returns the single value left on the stack.
  absl::StatusOr<PickleResult> Run();

 private:
  // An InvalidArgument naming the source, byte offset and opcode.
  absl::Status Err(absl::string_view what) const;
  // Fails unless `n` more input bytes remain.
  absl::Status Need(uint64_t n) const;
  // Reads an `n`-byte little-endian integer (after Need).
  uint64_t ReadLe(int n);
  // Reads a newline-terminated GLOBAL operand (at most 256 bytes).
  absl::StatusOr<std::string> ReadLine();
  // Allocates a value in the result's arena.
  PyValue* New(PyValue::Kind kind);
  // Stack operations; none crosses the innermost MARK.
  absl::Status Push(PyValue* v);
  absl::StatusOr<PyValue*> Pop();
  absl::StatusOr<PyValue*> Peek() const;
  absl::StatusOr<std::vector<PyValue*>> PopMark();
  // Marks `child` nested in `parent` and enforces kMaxPickleDepth.
  absl::Status AddChild(PyValue* parent, PyValue* child);
  // The stack top, if it is a `kind` not yet nested anywhere.
  absl::StatusOr<PyValue*> Mutable(PyValue::Kind kind);
  // Value constructors for the opcodes.
  absl::Status PushInt(int64_t v);
  absl::Status PushString(PyValue::Kind kind, uint64_t n);
  absl::Status PushLong(uint64_t n);
  absl::Status PushSequence(PyValue::Kind kind,
                            const std::vector<PyValue*>& items);
  absl::Status SetItems(PyValue* dict, const std::vector<PyValue*>& kv);
  // Pushes a whitelisted global or fails naming it.
  absl::Status PushGlobal(const std::string& module, const std::string& name);
  // REDUCE/NEWOBJ of a whitelisted global with an argument tuple.
  absl::StatusOr<PyValue*> Call(PyValue* callable, PyValue* args);
  absl::StatusOr<PyValue*> RebuildTensor(const std::vector<PyValue*>& args);
  // BUILD: namespace attributes; ignored state of dicts (`_metadata`).
  absl::Status Build();
  // BINPERSID: a ('storage', class, key, location, numel) reference.
  absl::Status PersistentLoad();
  // Memo store and lookup (indices are keys, never sizes).
  absl::Status Memo(uint64_t index);
  absl::Status Get(uint64_t index);
  // Executes one opcode; sets `*stop` at STOP.
  absl::Status Step(uint8_t op, bool* stop);

  absl::string_view in_;
  const std::string& source_;
  uint64_t pos_ = 0;
  uint64_t op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<PyValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyValue*> memo_;
  PickleResult result_;
};

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_PICKLE_VM_H_
