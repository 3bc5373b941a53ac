#include "server/job_convert.h"

#include "common/proto_time.h"

namespace lvs::server {

v1::VideoJob ToVideoJob(const JobRecord& job, int64_t position) {
  v1::VideoJob out;
  out.set_name(JobName(JobKind::kVideo, job.id));
  out.set_request_id(job.request_id);
  *out.mutable_request() = job.request;
  out.set_state(job.state);
  common::ToProto(job.create_time, out.mutable_create_time());
  common::ToProto(job.start_time, out.mutable_start_time());
  common::ToProto(job.end_time, out.mutable_end_time());
  common::ToProto(job.expire_time, out.mutable_expire_time());
  out.set_attempts(job.attempts);
  out.set_worker(job.worker);
  out.set_queue_position(static_cast<int32_t>(position));
  *out.mutable_progress() = job.progress;
  out.mutable_progress()->set_bytes(job.result_bytes);
  if (job.error) *out.mutable_error() = *job.error;
  if (job.completed) *out.mutable_result() = *job.completed;
  return out;
}

v1::TrainingJob ToTrainingJob(const JobRecord& job) {
  v1::TrainingJob out;
  out.set_name(JobName(JobKind::kTraining, job.id));
  out.set_request_id(job.request_id);
  *out.mutable_spec() = job.training_spec;
  out.set_state(job.state);
  common::ToProto(job.create_time, out.mutable_create_time());
  common::ToProto(job.start_time, out.mutable_start_time());
  common::ToProto(job.end_time, out.mutable_end_time());
  out.set_attempts(job.attempts);
  out.set_trainer(job.worker);
  if (job.last_step) *out.mutable_last_step() = *job.last_step;
  if (job.checkpoint) *out.mutable_last_checkpoint() = *job.checkpoint;
  if (job.error) *out.mutable_error() = *job.error;
  return out;
}

}  // namespace lvs::server
