#include "server/job_convert.h"

#include "common/proto_time.h"

namespace lvs::server {

v1::VideoJob ToVideoJob(const JobRecord& job, int64_t position) {
  v1::VideoJob out;
  out.set_name(JobName(JobKind::kVideo, job.id));
  out.set_request_id(job.request_id);
  out.mutable_request()->ParseFromString(job.spec);
  out.set_state(job.state);
  common::ToProto(job.create_time, out.mutable_create_time());
  common::ToProto(job.start_time, out.mutable_start_time());
  common::ToProto(job.end_time, out.mutable_end_time());
  common::ToProto(job.expire_time, out.mutable_expire_time());
  out.set_attempts(job.attempts);
  out.set_worker(job.worker);
  out.set_queue_position(static_cast<int32_t>(position));
  out.mutable_progress()->ParseFromString(job.progress);
  out.mutable_progress()->set_bytes(job.result_bytes);
  if (!job.error.empty()) out.mutable_error()->ParseFromString(job.error);
  if (!job.result.empty()) out.mutable_result()->ParseFromString(job.result);
  return out;
}

v1::TrainingJob ToTrainingJob(const JobRecord& job) {
  v1::TrainingJob out;
  out.set_name(JobName(JobKind::kTraining, job.id));
  out.set_request_id(job.request_id);
  out.mutable_spec()->ParseFromString(job.spec);
  out.set_state(job.state);
  common::ToProto(job.create_time, out.mutable_create_time());
  common::ToProto(job.start_time, out.mutable_start_time());
  common::ToProto(job.end_time, out.mutable_end_time());
  out.set_attempts(job.attempts);
  out.set_trainer(job.worker);
  if (!job.progress.empty()) {
    out.mutable_last_step()->ParseFromString(job.progress);
  }
  if (!job.checkpoint.empty()) {
    out.mutable_last_checkpoint()->ParseFromString(job.checkpoint);
  }
  if (!job.error.empty()) out.mutable_error()->ParseFromString(job.error);
  return out;
}

}  // namespace lvs::server
