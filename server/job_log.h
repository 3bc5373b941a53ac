// The server's job lines in the structured log (common/log.h): one
// "job_state" line per job state change with the job, its state, worker,
// attempt and durations.
//
// Thread-safety: thread-safe; lines never interleave.
#ifndef LVS_SERVER_JOB_LOG_H_
#define LVS_SERVER_JOB_LOG_H_

#include <string>

#include "common/log.h"
#include "server/job_store.h"

namespace lvs::server {

// The server logs through the one process-wide logger.
using common::LogEvent;

// Logs a job's current state ("job_state" line) with its timings.
void LogJobState(const JobRecord& job, const std::string& note = "");

}  // namespace lvs::server

#endif  // LVS_SERVER_JOB_LOG_H_
