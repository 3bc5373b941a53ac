// Time source of the server. Lease expiry, TTLs and timestamps read it, so
// tests drive time with `FakeClock` instead of sleeping.
//
// Thread-safety: every Clock is safe to call from any thread.
#ifndef LVS_SERVER_CLOCK_H_
#define LVS_SERVER_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lvs::server {

// A source of the current time.
class Clock {
 public:
  virtual ~Clock() = default;

  // Returns the current time.
  virtual absl::Time Now() = 0;
};

// The system's wall clock.
class RealClock : public Clock {
 public:
  // Returns absl::Now().
  absl::Time Now() override { return absl::Now(); }
};

// A clock that only moves when told to.
class FakeClock : public Clock {
 public:
  // Starts at `start`.
  explicit FakeClock(absl::Time start) : now_(start) {}

  // Returns the time set last.
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  // Moves the clock forward by `d`.
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::server

#endif  // LVS_SERVER_CLOCK_H_
