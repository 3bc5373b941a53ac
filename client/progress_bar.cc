#include "client/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lvs::client {
namespace {

// Returns the terminal width of `out`, or 80.
int TerminalWidth(std::FILE* out) {
  winsize ws{};
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) {
    return ws.ws_col;
  }
  return 80;
}

// Returns "[#####.....]" with `cells` inner cells, `fraction` filled.
std::string Bar(double fraction, int cells) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(std::floor(fraction * cells));
  return absl::StrCat("[", std::string(filled, '#'),
                      std::string(cells - filled, '.'), "]");
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "--:--";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  }
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
}

std::string RenderProgress(const ProgressState& s, int width) {
  using Phase = ProgressState::Phase;
  std::string line;
  switch (s.phase) {
    case Phase::kSubmitted:
      line = "submitted";
      break;
    case Phase::kQueued:
      line = absl::StrCat("queued: position ", s.queue_position, " (",
                          s.queue_ahead, " ahead)");
      break;
    case Phase::kStarted:
      line = absl::StrCat("started on ", s.worker.empty() ? "?" : s.worker,
                          ", encoding text");
      break;
    case Phase::kDenoising:
    case Phase::kDecoding:
    case Phase::kDone: {
      const int steps_done = s.step_index + 1;  // Shown 1-based: "1/N".
      const std::string stats =
          absl::StrFormat(" %d/%d %.2f it/s ETA %s", steps_done, s.total_steps,
                          s.it_per_s, FormatDuration(s.eta_seconds));
      std::string tail;
      if (s.phase == Phase::kDecoding || s.phase == Phase::kDone) {
        absl::StrAppend(&tail, " frames ", s.frames_done, "/", s.frames_total);
      }
      if (s.bytes > 0) absl::StrAppend(&tail, " ", FormatBytes(s.bytes));
      const std::string head =
          s.phase == Phase::kDone ? "done    " : "denoise ";
      const int cells = std::max(
          0, width -
                 static_cast<int>(head.size() + stats.size() + tail.size()) -
                 2);
      const double fraction =
          s.total_steps > 0 ? static_cast<double>(steps_done) / s.total_steps
                            : 0;
      line = absl::StrCat(head,
                          cells >= 5 ? Bar(fraction, std::min(cells, 40)) : "",
                          stats, tail);
      break;
    }
  }
  if (static_cast<int>(line.size()) > width) line.resize(std::max(width, 0));
  return line;
}

ProgressBar::ProgressBar(std::FILE* out)
    : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressBar::Update(const ProgressState& state) {
  if (tty_) {
    const std::string line = RenderProgress(state, TerminalWidth(out_) - 1);
    if (line == last_line_) return;
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());
    std::fflush(out_);
    last_line_ = line;
    drawn_ = true;
    return;
  }
  // Not a terminal: one line per phase change.
  if (drawn_ && state.phase == last_phase_) return;
  std::fprintf(out_, "%s\n", RenderProgress(state, 120).c_str());
  std::fflush(out_);
  last_phase_ = state.phase;
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (tty_ && drawn_) std::fputc('\n', out_);
  std::fflush(out_);
  drawn_ = false;
}

}  // namespace lvs::client
