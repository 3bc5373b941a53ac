// Wakes the streams that follow a job when its event log grows or its state
// changes. Subscribers hold their own state; the hub keeps weak references, so
// a stream that ends never receives a late wake-up.
//
// Thread-safety: thread-safe. Wake() runs on the notifying thread, outside the
// hub's lock.
#ifndef LVS_SERVER_EVENT_HUB_H_
#define LVS_SERVER_EVENT_HUB_H_

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

  // Wakes every subscriber (shutdown).
  void NotifyAll() {
    std::vector<std::shared_ptr<JobSubscriber>> wake;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, weak] : subs_) {
        if (auto s = weak.lock()) wake.push_back(std::move(s));
      }
    }
    for (const auto& s : wake) s->Wake();
  }

 private:
  absl::Mutex mu_;
  std::multimap<std::string, std::weak_ptr<JobSubscriber>> subs_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lvs::server

#endif  // LVS_SERVER_EVENT_HUB_H_
