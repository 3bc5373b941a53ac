// The structured log of every lvs process: one JSON object per line on
// stderr, written with a single write(2) so lines never interleave:
//
//   {"ts":"2026-01-02T03:04:05.678Z","level":"info","process":"lvs-worker",
//    "event":"job_start","worker_id":"w1","job_id":"videos/…","attempt":1}
//
// "ts" (RFC 3339, UTC, milliseconds), "level", "process" and "event" come
// first; then the process-wide context (SetLogContext: e.g. the worker_id of
// a worker or trainer process, so that it is on every line), then the
// line's own fields. Lines about one job carry "job_id" (its resource name,
// "videos/…" or "training/…"); lines about one worker carry "worker_id".
//
// Thread-safety: thread-safe. SetLogProcess/SetLogContext are meant for
// start-up but may be called at any time.
#ifndef LVS_COMMON_LOG_H_
#define LVS_COMMON_LOG_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace lvs::common {

// Severity of a line.
enum class LogLevel { kInfo, kWarning, kError };

// Names the process ("lvs-server", "lvs-worker", ...) on every line.
void SetLogProcess(std::string process);

// Adds `fields` (an object) to every later line, e.g. {"worker_id": "w1"};
// a null value removes a field.
void SetLogContext(const nlohmann::ordered_json& fields);

// Formats one line (without the newline): what LogEvent writes.
std::string FormatLogLine(LogLevel level, std::string_view event,
                          const nlohmann::ordered_json& fields);

// Writes one line with `event` and the object `fields` (may be empty/null;
// fields keep their order, null and empty-string values are left out).
void LogEvent(std::string_view event, const nlohmann::ordered_json& fields = {},
              LogLevel level = LogLevel::kInfo);

// Shorthands for warnings and errors.
inline void LogWarning(std::string_view event,
                       const nlohmann::ordered_json& fields = {}) {
  LogEvent(event, fields, LogLevel::kWarning);
}
inline void LogError(std::string_view event,
                     const nlohmann::ordered_json& fields = {}) {
  LogEvent(event, fields, LogLevel::kError);
}

}  // namespace lvs::common

#endif  // LVS_COMMON_LOG_H_
