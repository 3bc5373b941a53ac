// JobStore: the reads (read connection, queue index, result files), which
// never wait for the writer. Changes are in job_store.cc and
// job_store_lease.cc.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/job_store.h"

namespace lvs::server {
namespace {

absl::Time FromMicros(int64_t us) {
  return us == 0 ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

int64_t State(v1::JobState state) { return static_cast<int64_t>(state); }

}  // namespace

absl::StatusOr<std::vector<JobRecord>> JobStore::ReadQuery(
    const std::string& where_sql,
    const std::function<void(SqliteStmt&)>& bind) {
  absl::MutexLock lock(&read_mu_);
  reads_.fetch_add(1, std::memory_order_relaxed);
  return Query(read_db_.get(), where_sql, bind);
}

absl::StatusOr<JobRecord> JobStore::Get(JobKind kind, const std::string& id) {
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> rows,
      ReadQuery("WHERE id = ?", [&](SqliteStmt& st) { st.Bind(1, id); }));
  if (rows.empty() || rows[0].kind != kind) {
    return absl::NotFoundError(
        absl::StrCat(JobName(kind, id), " does not exist"));
  }
  return std::move(rows[0]);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::List(const ListQuery& q) {
  std::string where =
      "WHERE kind = ?1 AND (?2 = '' OR owner = ?2) AND "
      "(?3 = 0 OR state = ?3) AND (?4 = 0 OR seq < ?4) "
      "ORDER BY seq DESC LIMIT ?5";
  return ReadQuery(where, [&](SqliteStmt& st) {
    st.Bind(1, static_cast<int64_t>(q.kind))
        .Bind(2, q.owner)
        .Bind(3, State(q.state))
        .Bind(4, q.before_seq)
        .Bind(5, static_cast<int64_t>(q.limit));
  });
}

absl::StatusOr<int64_t> JobStore::QueuePosition(const JobRecord& job) {
  return Position(job);
}

int64_t JobStore::QueuePosition(const std::string& id) {
  absl::MutexLock lock(&index_mu_);
  return index_.Position(id);
}

absl::StatusOr<std::map<int, int64_t>> JobStore::QueuedByPriority(
    JobKind kind) {
  absl::MutexLock lock(&index_mu_);
  return index_.ByPriority(static_cast<int>(kind));
}

absl::StatusOr<int64_t> JobStore::CountState(JobKind kind, v1::JobState state) {
  if (state == v1::QUEUED) {
    absl::MutexLock lock(&index_mu_);
    return index_.Count(static_cast<int>(kind));
  }
  absl::MutexLock lock(&read_mu_);
  reads_.fetch_add(1, std::memory_order_relaxed);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      read_db_->Prepare(
          "SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = ?"));
  st.Bind(1, static_cast<int64_t>(kind)).Bind(2, State(state));
  LVS_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Int(0) : 0;
}

absl::StatusOr<std::optional<absl::Time>> JobStore::OldestQueued(JobKind kind) {
  absl::MutexLock lock(&read_mu_);
  reads_.fetch_add(1, std::memory_order_relaxed);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      read_db_->Prepare("SELECT MIN(create_us) FROM jobs WHERE kind = ? AND "
                        "state = ?"));
  st.Bind(1, static_cast<int64_t>(kind)).Bind(2, State(v1::QUEUED));
  LVS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::nullopt;
  return FromMicros(st.Int(0));
}

absl::StatusOr<std::vector<StoredEvent>> JobStore::ReadEvents(
    const std::string& id, int64_t after_seq, int limit) {
  absl::MutexLock lock(&read_mu_);
  reads_.fetch_add(1, std::memory_order_relaxed);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      read_db_->Prepare(
          "SELECT seq, body, chunk_offset, chunk_length FROM events "
          "WHERE job = ? AND seq > ? ORDER BY seq LIMIT ?"));
  st.Bind(1, id).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit));
  std::vector<StoredEvent> out;
  while (true) {
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out.push_back({st.Int(0), st.Text(1), st.Int(2), st.Int(3)});
  }
  return out;
}

absl::StatusOr<std::string> JobStore::ReadResult(const std::string& id,
                                                 int64_t offset,
                                                 int64_t length) {
  return results_.Read(id, offset, length);
}

}  // namespace lvs::server
