// Positions of the QUEUED jobs in memory, by kind, priority and insertion
// order, so that a queue position costs no query. The job store's writer
// keeps it in step with the database.
//
// Thread-safety: not thread-safe; JobStore guards it with a mutex.
#ifndef LVS_SERVER_QUEUE_INDEX_H_
#define LVS_SERVER_QUEUE_INDEX_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace lvs::server {

// See the file comment. `kind` is a JobKind value.
class QueueIndex {
 public:
  void Clear() {
    queues_.clear();
    by_id_.clear();
  }
  // Adds job `id`; returns whether jobs already queued moved back (it went
  // ahead of one).
  bool Add(int kind, int priority, int64_t seq, const std::string& id);
  void Remove(const std::string& id);
  // 1-based position of a queued job (0 when it is not queued).
  int64_t Position(int kind, int priority, int64_t seq) const;
  int64_t Position(const std::string& id) const;
  // Queued jobs of `kind` per priority.
  std::map<int, int64_t> ByPriority(int kind) const;
  // Queued jobs of `kind`.
  int64_t Count(int kind) const;

 private:
  struct Entry {
    int kind = 0;
    int priority = 0;
    int64_t seq = 0;
  };
  // (kind, -priority) -> sorted seqs: iteration runs from the highest
  // priority down.
  std::map<std::pair<int, int>, std::deque<int64_t>> queues_;
  absl::flat_hash_map<std::string, Entry> by_id_;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_QUEUE_INDEX_H_
