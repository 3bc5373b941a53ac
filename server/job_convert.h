// Converts stored jobs into the API's VideoJob and TrainingJob resources.
//
// Thread-safety: pure functions.
#ifndef LVS_SERVER_JOB_CONVERT_H_
#define LVS_SERVER_JOB_CONVERT_H_

#include <cstdint>

#include "lumina/video/v1/common.pb.h"
#include "server/job_store.h"

namespace lvs::server {

// The VideoJob of a stored video job; `position` is its 1-based queue
// position (0 unless QUEUED).
v1::VideoJob ToVideoJob(const JobRecord& job, int64_t position);

// The TrainingJob of a stored training job.
v1::TrainingJob ToTrainingJob(const JobRecord& job);

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_CONVERT_H_
