// Structured one-line logs of the worker: "time event key=value ...", one
// line per job state change, written to stderr with a single write.
//
// Thread-safety: safe from any thread.
#ifndef LVS_WORKER_LOG_H_
#define LVS_WORKER_LOG_H_

#include <string>
#include <utility>
#include <vector>

namespace lvs::worker {

// Writes `event` and the non-empty `fields` as one line (values with spaces
// are quoted).
void LogLine(const std::string& event,
             const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace lvs::worker

#endif  // LVS_WORKER_LOG_H_
