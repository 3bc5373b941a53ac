// Structured logs: one JSON object per line on stderr, e.g. one line per job
// state change with the job, its state, worker, attempt and durations.
//
// Thread-safety: thread-safe; lines never interleave.
#ifndef LVS_SERVER_JOB_LOG_H_
#define LVS_SERVER_JOB_LOG_H_

#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "server/job_store.h"

namespace lvs::server {

// Writes `fields` plus "ts" (RFC 3339) and "event" as one line.
void LogEvent(const std::string& event, nlohmann::json fields);

// Logs a job's current state ("job_state" line) with its timings.
void LogJobState(const JobRecord& job, const std::string& note = "");

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_LOG_H_
