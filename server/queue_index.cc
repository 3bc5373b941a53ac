#include "server/queue_index.h"

#include <algorithm>
#include <climits>

namespace lvs::server {

bool QueueIndex::Add(int kind, int priority, int64_t seq,
                     const std::string& id) {
  std::deque<int64_t>& q = queues_[{kind, -priority}];
  auto pos = std::lower_bound(q.begin(), q.end(), seq);
  bool moved = pos != q.end();
  q.insert(pos, seq);
  by_id_[id] = {kind, priority, seq};
  // Jobs of lower priority queue behind it.
  for (auto it = queues_.upper_bound({kind, -priority});
       !moved && it != queues_.end() && it->first.first == kind; ++it) {
    moved = !it->second.empty();
  }
  return moved;
}

void QueueIndex::Remove(const std::string& id) {
  auto entry = by_id_.find(id);
  if (entry == by_id_.end()) return;
  const Entry e = entry->second;
  by_id_.erase(entry);
  auto it = queues_.find({e.kind, -e.priority});
  if (it == queues_.end()) return;
  auto pos = std::lower_bound(it->second.begin(), it->second.end(), e.seq);
  if (pos != it->second.end() && *pos == e.seq) it->second.erase(pos);
}

int64_t QueueIndex::Position(const std::string& id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return 0;
  return Position(it->second.kind, it->second.priority, it->second.seq);
}

int64_t QueueIndex::Position(int kind, int priority, int64_t seq) const {
  int64_t ahead = 0;
  for (auto it = queues_.lower_bound({kind, INT_MIN});
       it != queues_.end() && it->first.first == kind; ++it) {
    const std::deque<int64_t>& q = it->second;
    if (-it->first.second > priority) {
      ahead += static_cast<int64_t>(q.size());
      continue;
    }
    auto pos = std::lower_bound(q.begin(), q.end(), seq);
    if (pos == q.end() || *pos != seq) return 0;
    return ahead + (pos - q.begin()) + 1;
  }
  return 0;
}

std::map<int, int64_t> QueueIndex::ByPriority(int kind) const {
  std::map<int, int64_t> out;
  for (const auto& [key, q] : queues_) {
    if (key.first == kind && !q.empty()) {
      out[-key.second] = static_cast<int64_t>(q.size());
    }
  }
  return out;
}

int64_t QueueIndex::Count(int kind) const {
  int64_t n = 0;
  for (const auto& [key, q] : queues_) {
    if (key.first == kind) n += static_cast<int64_t>(q.size());
  }
  return n;
}

}  // namespace lvs::server
