// Conversions between absl time types and google.protobuf.Timestamp/Duration.
//
// Thread-safety: pure functions.
#ifndef LVS_COMMON_PROTO_TIME_H_
#define LVS_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace lvs::common {

// Writes `t` into `out`; an infinite past leaves `out` cleared.
inline void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  out->Clear();
  if (t == absl::InfinitePast()) return;
  const int64_t us = absl::ToUnixMicros(t);
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
}

// Writes `d` into `out`.
inline void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

// Reads a Duration.
inline absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Reads a Timestamp; an unset one is the infinite past.
inline absl::Time FromProto(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace lvs::common

#endif  // LVS_COMMON_PROTO_TIME_H_
