// Pickle opcodes (protocols 0-5) by name, for the VM and its error messages
// (torch-free).
//
// Thread-safety: constants and a pure function.
#ifndef LVS_MODEL_IO_PICKLE_OPCODES_H_
#define LVS_MODEL_IO_PICKLE_OPCODES_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace lvs::io::pickle_op {

// The opcode bytes, named as CPython's pickle.py names them.
enum : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kFloat = 'F',
  kInt = 'I',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kLong = 'L',
  kBinInt2 = 'M',
  kNone = 'N',
  kPersId = 'P',
  kBinPersId = 'Q',
  kReduce = 'R',
  kString = 'S',
  kBinString = 'T',
  kShortBinString = 'U',
  kUnicode = 'V',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kGet = 'g',
  kBinGet = 'h',
  kInst = 'i',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kObj = 'o',
  kPut = 'p',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kProto = 0x80,
  kNewObj = 0x81,
  kExt1 = 0x82,
  kExt2 = 0x83,
  kExt4 = 0x84,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kEmptySet = 0x8f,
  kAddItems = 0x90,
  kFrozenSet = 0x91,
  kNewObjEx = 0x92,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
  kByteArray8 = 0x96,
  kNextBuffer = 0x97,
  kReadOnlyBuffer = 0x98,
};

}  // namespace lvs::io::pickle_op

namespace lvs::io {

// Returns the CPython name of opcode `op` ("BINPUT"), or "unknown".
inline absl::string_view PickleOpcodeName(uint8_t op) {
  namespace o = pickle_op;
  switch (op) {
    case o::kMark:
      return "MARK";
    case o::kStop:
      return "STOP";
    case o::kPop:
      return "POP";
    case o::kPopMark:
      return "POP_MARK";
    case o::kDup:
      return "DUP";
    case o::kFloat:
      return "FLOAT";
    case o::kInt:
      return "INT";
    case o::kBinInt:
      return "BININT";
    case o::kBinInt1:
      return "BININT1";
    case o::kLong:
      return "LONG";
    case o::kBinInt2:
      return "BININT2";
    case o::kNone:
      return "NONE";
    case o::kPersId:
      return "PERSID";
    case o::kBinPersId:
      return "BINPERSID";
    case o::kReduce:
      return "REDUCE";
    case o::kString:
      return "STRING";
    case o::kBinString:
      return "BINSTRING";
    case o::kShortBinString:
      return "SHORT_BINSTRING";
    case o::kUnicode:
      return "UNICODE";
    case o::kBinUnicode:
      return "BINUNICODE";
    case o::kAppend:
      return "APPEND";
    case o::kBuild:
      return "BUILD";
    case o::kGlobal:
      return "GLOBAL";
    case o::kDict:
      return "DICT";
    case o::kEmptyDict:
      return "EMPTY_DICT";
    case o::kAppends:
      return "APPENDS";
    case o::kGet:
      return "GET";
    case o::kBinGet:
      return "BINGET";
    case o::kInst:
      return "INST";
    case o::kLongBinGet:
      return "LONG_BINGET";
    case o::kList:
      return "LIST";
    case o::kEmptyList:
      return "EMPTY_LIST";
    case o::kObj:
      return "OBJ";
    case o::kPut:
      return "PUT";
    case o::kBinPut:
      return "BINPUT";
    case o::kLongBinPut:
      return "LONG_BINPUT";
    case o::kSetItem:
      return "SETITEM";
    case o::kTuple:
      return "TUPLE";
    case o::kEmptyTuple:
      return "EMPTY_TUPLE";
    case o::kSetItems:
      return "SETITEMS";
    case o::kBinFloat:
      return "BINFLOAT";
    case o::kProto:
      return "PROTO";
    case o::kNewObj:
      return "NEWOBJ";
    case o::kExt1:
      return "EXT1";
    case o::kExt2:
      return "EXT2";
    case o::kExt4:
      return "EXT4";
    case o::kTuple1:
      return "TUPLE1";
    case o::kTuple2:
      return "TUPLE2";
    case o::kTuple3:
      return "TUPLE3";
    case o::kNewTrue:
      return "NEWTRUE";
    case o::kNewFalse:
      return "NEWFALSE";
    case o::kLong1:
      return "LONG1";
    case o::kLong4:
      return "LONG4";
    case o::kBinBytes:
      return "BINBYTES";
    case o::kShortBinBytes:
      return "SHORT_BINBYTES";
    case o::kShortBinUnicode:
      return "SHORT_BINUNICODE";
    case o::kBinUnicode8:
      return "BINUNICODE8";
    case o::kBinBytes8:
      return "BINBYTES8";
    case o::kEmptySet:
      return "EMPTY_SET";
    case o::kAddItems:
      return "ADDITEMS";
    case o::kFrozenSet:
      return "FROZENSET";
    case o::kNewObjEx:
      return "NEWOBJ_EX";
    case o::kStackGlobal:
      return "STACK_GLOBAL";
    case o::kMemoize:
      return "MEMOIZE";
    case o::kFrame:
      return "FRAME";
    case o::kByteArray8:
      return "BYTEARRAY8";
    case o::kNextBuffer:
      return "NEXT_BUFFER";
    case o::kReadOnlyBuffer:
      return "READONLY_BUFFER";
  }
  return "unknown";
}

}  // namespace lvs::io

#endif  // LVS_MODEL_IO_PICKLE_OPCODES_H_
