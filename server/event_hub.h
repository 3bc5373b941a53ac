// Wakes the streams that follow a job when its event log grows or its state
// changes, and pushes queue positions to the followers of queued jobs when
// the queue moves (no store read per follower). Subscribers hold their own
// state; the hub keeps weak references, so a stream that ends never receives
// a late wake-up.
//
// Thread-safety: thread-safe. Wake() runs on the notifying thread, outside the
// hub's lock.
#ifndef LVS_SERVER_EVENT_HUB_H_
#define LVS_SERVER_EVENT_HUB_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lvs::server {

// Something that follows a job.
class JobSubscriber {
 public:
  virtual ~JobSubscriber() = default;
  // Called after job events were appended or the job changed state.
  virtual void Wake() = 0;
  // Called with the job's new 1-based queue position after the queue moved
  // (only while the job is queued).
  virtual void Moved(int64_t position) = 0;
};

// Job id -> subscribers.
class EventHub {
 public:
  // Follows job `id` until `subscriber` is destroyed or Unsubscribe() is
  // called.
  void Subscribe(const std::string& id,
                 const std::shared_ptr<JobSubscriber>& subscriber) {
    absl::MutexLock lock(&mu_);
    subs_.emplace(id, subscriber);
  }

  // Stops following job `id`.
  void Unsubscribe(const std::string& id, const JobSubscriber* subscriber) {
    absl::MutexLock lock(&mu_);
    auto [begin, end] = subs_.equal_range(id);
    for (auto it = begin; it != end;) {
      auto locked = it->second.lock();
      it = (!locked || locked.get() == subscriber) ? subs_.erase(it)
                                                   : std::next(it);
    }
  }

  // Wakes the subscribers of job `id`.
  void Notify(const std::string& id) {
    std::vector<std::shared_ptr<JobSubscriber>> wake;
    {
      absl::MutexLock lock(&mu_);
      auto [begin, end] = subs_.equal_range(id);
      for (auto it = begin; it != end;) {
        if (auto s = it->second.lock()) {
          wake.push_back(std::move(s));
          ++it;
        } else {
          it = subs_.erase(it);
        }
      }
    }
    for (const auto& s : wake) s->Wake();
  }

  // Tells the subscribers of queued jobs their position: `position(id)`
  // (0: not queued; not told).
  void PushPositions(
      const std::function<int64_t(const std::string&)>& position) {
    std::vector<std::pair<std::shared_ptr<JobSubscriber>, int64_t>> moved;
    {
      absl::MutexLock lock(&mu_);
      const std::string* last = nullptr;
      int64_t at = 0;
      for (const auto& [id, weak] : subs_) {
        if (last == nullptr || *last != id) at = position(id);
        last = &id;
        if (at <= 0) continue;
        if (auto s = weak.lock()) moved.emplace_back(std::move(s), at);
      }
    }
    for (const auto& [s, at] : moved) s->Moved(at);
  }

 private:
  absl::Mutex mu_;
  std::multimap<std::string, std::weak_ptr<JobSubscriber>> subs_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::server

#endif  // LVS_SERVER_EVENT_HUB_H_
