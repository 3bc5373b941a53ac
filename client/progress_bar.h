// The live one-line progress display of `lvs generate` and `lvs jobs watch`:
// queue position, step i/N with a bar, it/s, ETA and MP4 bytes received.
//
// `RenderProgress()` is a pure function (tested directly); `ProgressBar`
// redraws it in place on a terminal, or prints one line per phase change when
// the output is not a terminal (logs stay readable).
//
// Thread-safety: `ProgressBar` is used by one thread.
#ifndef LVS_CLIENT_PROGRESS_BAR_H_
#define LVS_CLIENT_PROGRESS_BAR_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace lvs::client {

// Everything the progress line shows.
struct ProgressState {
  enum class Phase {
    kSubmitted,
    kQueued,
    kStarted,
    kDenoising,
    kDecoding,
    kDone
  };
  Phase phase = Phase::kSubmitted;
  int queue_position = 0;  // 1-based position while queued.
  int queue_ahead = 0;     // Jobs ahead while queued.
  std::string worker;      // Worker that runs the job.
  int step_index = -1;     // 0-based latest finished step (-1: none yet).
  int total_steps = 0;
  double it_per_s = 0;
  double eta_seconds = -1;  // Negative: unknown.
  int frames_done = 0;
  int frames_total = 0;
  uint64_t bytes = 0;  // MP4 bytes received so far.
};

// Returns the progress line for `state`, at most `width` columns wide, with
// no trailing newline.
std::string RenderProgress(const ProgressState& state, int width);

// Formats `seconds` as "m:ss" (or "h:mm:ss"); "--:--" when negative.
std::string FormatDuration(double seconds);

// Formats a byte count as "512 B", "1.5 KiB", "3.2 MiB".
std::string FormatBytes(uint64_t bytes);

// Draws `RenderProgress()` to a stream.
class ProgressBar {
 public:
  // Draws to `out` (not owned); redraws in place when `out` is a terminal.
  explicit ProgressBar(std::FILE* out);

  // Shows `state`.
  void Update(const ProgressState& state);

  // Ends the line (call once when the job is over).
  void Finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool drawn_ = false;
  ProgressState::Phase last_phase_ = ProgressState::Phase::kSubmitted;
  std::string last_line_;
};

}  // namespace lvs::client

#endif  // LVS_CLIENT_PROGRESS_BAR_H_
