#include "worker/log.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lvs::worker {

void LogLine(const std::string& event,
             const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " ", event);
  for (const auto& [key, value] : fields) {
    if (value.empty()) continue;
    const bool quote = absl::StrContains(value, ' ');
    absl::StrAppend(&line, " ", key, "=", quote ? "\"" : "", value,
                    quote ? "\"" : "");
  }
  line.push_back('\n');
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace lvs::worker
