#include "server/job_log.h"

#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "google/rpc/status.pb.h"

namespace lvs::server {
namespace {

double Seconds(absl::Time from, absl::Time to) {
  return absl::ToDoubleSeconds(to - from);
}

}  // namespace

void LogJobState(const JobRecord& job, const std::string& note) {
  nlohmann::ordered_json f;
  f["job_id"] = JobName(job.kind, job.id);
  f["state"] = v1::JobState_Name(job.state);
  f["attempt"] = job.attempts;
  if (!job.worker.empty()) f["worker_id"] = job.worker;
  if (job.state == v1::RUNNING) {
    f["queue_wait_s"] = Seconds(job.create_time, job.start_time);
  }
  if (job.finished()) {
    f["total_s"] = Seconds(job.create_time, job.end_time);
    if (job.start_time != absl::InfinitePast()) {
      f["run_s"] = Seconds(job.start_time, job.end_time);
    }
  }
  if (job.error) f["error"] = job.error->message();
  if (!note.empty()) f["note"] = note;
  LogEvent("job_state", std::move(f));
}

}  // namespace lvs::server
