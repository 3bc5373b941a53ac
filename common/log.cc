#include "common/log.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lvs::common {
namespace {

ABSL_CONST_INIT absl::Mutex context_mu(absl::kConstInit);

// Process-wide fields, guarded by context_mu (heap-allocated: never
// destroyed, so logging from static destructors stays safe).
struct Context {
  std::string process;
  nlohmann::ordered_json fields = nlohmann::ordered_json::object();
};
Context& GetContext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(context_mu) {
  static Context* context = new Context;
  return *context;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kInfo:
    default:
      return "info";
  }
}

}  // namespace

void SetLogProcess(std::string process) {
  absl::MutexLock lock(&context_mu);
  GetContext().process = std::move(process);
}

void SetLogContext(const nlohmann::ordered_json& fields) {
  if (!fields.is_object()) return;
  absl::MutexLock lock(&context_mu);
  nlohmann::ordered_json& ctx = GetContext().fields;
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    if (it.value().is_null()) {
      ctx.erase(it.key());
    } else {
      ctx[it.key()] = it.value();
    }
  }
}

std::string FormatLogLine(LogLevel level, std::string_view event,
                          const nlohmann::ordered_json& fields) {
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                absl::UTCTimeZone());
  line["level"] = LevelName(level);
  {
    absl::MutexLock lock(&context_mu);
    const Context& ctx = GetContext();
    if (!ctx.process.empty()) line["process"] = ctx.process;
    line["event"] = std::string(event);
    for (auto it = ctx.fields.begin(); it != ctx.fields.end(); ++it) {
      line[it.key()] = it.value();
    }
  }
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (it.value().is_null()) continue;  // Absent, not "null".
      if (it.value().is_string() &&
          it.value().get_ref<const std::string&>().empty()) {
        continue;  // Empty strings are left out, like absent fields.
      }
      line[it.key()] = it.value();
    }
  }
  // Invalid UTF-8 (e.g. a path) is replaced rather than throwing.
  return line.dump(-1, ' ', false,
                   nlohmann::ordered_json::error_handler_t::replace);
}

void LogEvent(std::string_view event, const nlohmann::ordered_json& fields,
              LogLevel level) {
  std::string text = FormatLogLine(level, event, fields);
  text.push_back('\n');
  // One write: lines from several threads (or processes sharing the
  // stream) never interleave.
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace lvs::common
