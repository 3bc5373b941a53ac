// Builders of the serialized event bodies the job store writes itself
// (Queued, Started, Requeued) for either job kind.
//
// Thread-safety: pure functions.
#ifndef LVS_SERVER_JOB_EVENTS_H_
#define LVS_SERVER_JOB_EVENTS_H_

#include <string>

#include "absl/time/time.h"
#include "common/proto_time.h"
#include "lumina/video/v1/common.pb.h"

namespace lvs::server {

// Serializes an `Event` stamped with `now` after `fill(event)`.
template <typename Event, typename Fill>
std::string EventBody(absl::Time now, Fill fill) {
  Event e;
  common::ToProto(now, e.mutable_time());
  fill(e);
  return e.SerializeAsString();
}

// Serializes a GenerateVideoEvent (`video`) or a TrainingEvent; `fill` takes
// either (a generic lambda).
template <typename Fill>
std::string KindEventBody(bool video, absl::Time now, Fill fill) {
  if (video) {
    return EventBody<::lumina::video::v1::GenerateVideoEvent>(now, fill);
  }
  return EventBody<::lumina::video::v1::TrainingEvent>(now, fill);
}

// A Queued event at 1-based `position`.
inline std::string QueuedEventBody(bool video, absl::Time now,
                                   int64_t position) {
  return KindEventBody(video, now, [position](auto& e) {
    e.mutable_queued()->set_position(static_cast<int32_t>(position));
    e.mutable_queued()->set_ahead(static_cast<int32_t>(position - 1));
  });
}

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_EVENTS_H_
