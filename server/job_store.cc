#include "server/job_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "server/job_events.h"

namespace lvs::server {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  kind INTEGER NOT NULL,
  owner TEXT NOT NULL,
  request_id TEXT,
  priority INTEGER NOT NULL,
  state INTEGER NOT NULL,
  spec BLOB NOT NULL,
  create_us INTEGER NOT NULL DEFAULT 0,
  start_us INTEGER NOT NULL DEFAULT 0,
  end_us INTEGER NOT NULL DEFAULT 0,
  expire_us INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  worker TEXT NOT NULL DEFAULT '',
  lease_id TEXT NOT NULL DEFAULT '',
  lease_expire_us INTEGER NOT NULL DEFAULT 0,
  error BLOB, result BLOB, progress BLOB, checkpoint BLOB,
  last_event INTEGER NOT NULL DEFAULT 0,
  model TEXT NOT NULL DEFAULT '', width INTEGER NOT NULL DEFAULT 0,
  height INTEGER NOT NULL DEFAULT 0, frames INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_request ON jobs(kind, owner, request_id)
  WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(kind, state, priority DESC, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(kind, owner, state);
CREATE TABLE IF NOT EXISTS events(
  job TEXT NOT NULL,
  seq INTEGER NOT NULL,
  body BLOB NOT NULL,
  chunk_offset INTEGER NOT NULL DEFAULT -1,
  chunk_length INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(job, seq)) WITHOUT ROWID;
)sql";

constexpr char kColumns[] =
    "id, kind, seq, owner, request_id, priority, state, spec, create_us, "
    "start_us, end_us, expire_us, attempts, worker, lease_id, "
    "lease_expire_us, error, result, progress, checkpoint, last_event";

int64_t Micros(absl::Time t) {
  return t == absl::InfinitePast() ? 0 : absl::ToUnixMicros(t);
}

absl::Time FromMicros(int64_t us) {
  return us == 0 ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

}  // namespace

std::string JobName(JobKind kind, const std::string& id) {
  return absl::StrCat(kind == JobKind::kVideo ? "jobs/" : "trainingJobs/", id);
}

absl::StatusOr<std::string> ParseJobName(JobKind kind, const std::string& name,
                                         const std::string& field) {
  const std::string prefix = JobName(kind, "");
  std::string id = absl::StartsWith(name, prefix) ? name.substr(prefix.size())
                                                  : std::string();
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && (std::isalnum(static_cast<unsigned char>(c)));
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", name.substr(0, 80),
                     "\" is not a resource name of the "
                     "form ",
                     prefix, "{id}"));
  }
  return id;
}

JobStore::JobStore(const JobStoreOptions& options, Clock* clock,
                   std::unique_ptr<SqliteDb> db)
    : options_(options),
      clock_(clock),
      db_(std::move(db)),
      results_(options.data_dir + "/results") {}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(
    const JobStoreOptions& options, Clock* clock) {
  ResultFiles dirs(options.data_dir + "/results");
  LVS_RETURN_IF_ERROR(dirs.Init());
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                       SqliteDb::Open(options.data_dir + "/lvs.db"));
  LVS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  LVS_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  LVS_RETURN_IF_ERROR(db->Exec(kSchema));
  std::unique_ptr<JobStore> store(new JobStore(options, clock, std::move(db)));
  LVS_RETURN_IF_ERROR(store->AddCapabilityColumns());
  LVS_RETURN_IF_ERROR(store->RequeueRunning("server restarted").status());
  return store;
}

absl::Status JobStore::AddCapabilityColumns() {
  absl::MutexLock lock(&mu_);
  LVS_ASSIGN_OR_RETURN(SqliteStmt info,
                       db_->Prepare("SELECT COUNT(*) FROM pragma_table_info("
                                    "'jobs') WHERE name = 'frames'"));
  LVS_ASSIGN_OR_RETURN(bool row, info.Step());
  if (row && info.Int(0) > 0) return absl::OkStatus();
  // A database written before the capability columns: add them and fill
  // them from each video job's request.
  SqliteTransaction tx(db_.get());
  LVS_RETURN_IF_ERROR(tx.status());
  LVS_RETURN_IF_ERROR(db_->Exec(
      "ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT '';"
      "ALTER TABLE jobs ADD COLUMN width INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE jobs ADD COLUMN height INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE jobs ADD COLUMN frames INTEGER NOT NULL DEFAULT 0;"));
  LVS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs,
                       Query("WHERE kind = ?", [](SqliteStmt& st) {
                         st.Bind(1, static_cast<int64_t>(JobKind::kVideo));
                       }));
  for (const JobRecord& job : jobs) {
    LVS_RETURN_IF_ERROR(WriteCapabilities(job.id, job.spec));
  }
  return tx.Commit();
}

absl::Status JobStore::WriteCapabilities(const std::string& id,
                                         const std::string& spec) {
  v1::GenerateVideoRequest req;
  if (!req.ParseFromString(spec)) return absl::OkStatus();
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("UPDATE jobs SET model = ?, width = ?, height = ?, "
                   "frames = ? WHERE id = ?"));
  st.Bind(1, req.model())
      .Bind(2, static_cast<int64_t>(req.width()))
      .Bind(3, static_cast<int64_t>(req.height()))
      .Bind(4, static_cast<int64_t>(req.frames()))
      .Bind(5, id);
  return st.Run();
}

std::string JobStore::NewId() {
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(rng_));
}

absl::StatusOr<std::vector<JobRecord>> JobStore::Query(
    const std::string& where_sql,
    const std::function<void(SqliteStmt&)>& bind) {
  LVS_ASSIGN_OR_RETURN(SqliteStmt st,
                       db_->Prepare(absl::StrCat("SELECT ", kColumns,
                                                 " FROM jobs ", where_sql)));
  bind(st);
  std::vector<JobRecord> out;
  while (true) {
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    JobRecord r;
    r.id = st.Text(0);
    r.kind = static_cast<JobKind>(st.Int(1));
    r.seq = st.Int(2);
    r.owner = st.Text(3);
    r.request_id = st.Text(4);
    r.priority = static_cast<int>(st.Int(5));
    r.state = static_cast<v1::JobState>(st.Int(6));
    r.spec = st.Text(7);
    r.create_time = FromMicros(st.Int(8));
    r.start_time = FromMicros(st.Int(9));
    r.end_time = FromMicros(st.Int(10));
    r.expire_time = FromMicros(st.Int(11));
    r.attempts = static_cast<int>(st.Int(12));
    r.worker = st.Text(13);
    r.lease_id = st.Text(14);
    r.lease_expire = FromMicros(st.Int(15));
    r.error = st.Text(16);
    r.result = st.Text(17);
    r.progress = st.Text(18);
    r.checkpoint = st.Text(19);
    r.last_event = st.Int(20);
    if (r.kind == JobKind::kVideo) r.result_bytes = results_.Size(r.id);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::optional<JobRecord>> JobStore::Load(const std::string& id) {
  LVS_ASSIGN_OR_RETURN(
      std::vector<JobRecord> rows,
      Query("WHERE id = ?", [&](SqliteStmt& st) { st.Bind(1, id); }));
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

absl::StatusOr<JobRecord> JobStore::LoadLeased(const std::string& id,
                                               const std::string& lease_id) {
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> job, Load(id));
  if (!job) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  if (job->state != v1::RUNNING || job->lease_id != lease_id ||
      lease_id.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lease \"", lease_id, "\" of job ", id, " is no longer valid (state ",
        v1::JobState_Name(job->state), ")"));
  }
  return *std::move(job);
}

absl::StatusOr<int64_t> JobStore::Insert(const std::string& id,
                                         const std::string& body,
                                         int64_t chunk_offset,
                                         int64_t chunk_length) {
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt bump,
      db_->Prepare("UPDATE jobs SET last_event = last_event + 1 WHERE id = ? "
                   "RETURNING last_event"));
  bump.Bind(1, id);
  LVS_ASSIGN_OR_RETURN(bool row, bump.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  const int64_t seq = bump.Int(0);
  LVS_RETURN_IF_ERROR(bump.Step().status());
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt ins,
      db_->Prepare("INSERT INTO events(job, seq, body, chunk_offset, "
                   "chunk_length) VALUES(?, ?, ?, ?, ?)"));
  ins.Bind(1, id)
      .Bind(2, seq)
      .BindBlob(3, body)
      .Bind(4, chunk_offset)
      .Bind(5, chunk_length);
  LVS_RETURN_IF_ERROR(ins.Run());
  return seq;
}

absl::StatusOr<int64_t> JobStore::Position(const JobRecord& job) {
  if (job.state != v1::QUEUED) return 0;
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = ? AND "
                   "(priority > ? OR (priority = ? AND seq <= ?))"));
  st.Bind(1, static_cast<int64_t>(job.kind))
      .Bind(2, static_cast<int64_t>(v1::QUEUED))
      .Bind(3, job.priority)
      .Bind(4, job.priority)
      .Bind(5, job.seq);
  LVS_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Int(0) : 0;
}

absl::StatusOr<AdmitResult> JobStore::Admit(const NewJob& job,
                                            const AdmitLimits& limits) {
  absl::MutexLock lock(&mu_);
  SqliteTransaction tx(db_.get());
  LVS_RETURN_IF_ERROR(tx.status());
  AdmitResult out;
  const int64_t kind = static_cast<int64_t>(job.kind);
  if (!job.request_id.empty()) {
    LVS_ASSIGN_OR_RETURN(
        std::vector<JobRecord> same,
        Query("WHERE kind = ? AND owner = ? AND request_id = ?",
              [&](SqliteStmt& st) {
                st.Bind(1, kind).Bind(2, job.owner).Bind(3, job.request_id);
              }));
    if (!same.empty()) {
      out.outcome = AdmitOutcome::kExisting;
      out.job = std::move(same[0]);
      return out;
    }
  }
  auto count = [&](const std::string& sql,
                   bool by_owner) -> absl::StatusOr<int64_t> {
    LVS_ASSIGN_OR_RETURN(SqliteStmt st, db_->Prepare(sql));
    st.Bind(1, kind);
    if (by_owner) st.Bind(2, job.owner);
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Int(0) : 0;
  };
  struct Check {
    int64_t limit;
    const char* sql;
    bool by_owner;
    AdmitOutcome outcome;
  };
  const Check checks[] = {
      {limits.max_queue,
       "SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = 1", false,
       AdmitOutcome::kQueueFull},
      {limits.owner_max_active,
       "SELECT COUNT(*) FROM jobs WHERE kind = ? AND owner = ? AND state IN "
       "(1, 2)",
       true, AdmitOutcome::kOwnerActiveFull},
      {limits.owner_max_queued,
       "SELECT COUNT(*) FROM jobs WHERE kind = ? AND owner = ? AND state = 1",
       true, AdmitOutcome::kOwnerQueuedFull},
  };
  for (const Check& c : checks) {
    if (c.limit <= 0) continue;
    LVS_ASSIGN_OR_RETURN(int64_t n, count(c.sql, c.by_owner));
    if (n >= c.limit) {
      out.outcome = c.outcome;
      out.limit = c.limit;
      return out;
    }
  }
  const absl::Time now = clock_->Now();
  const std::string id = NewId();
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt ins,
      db_->Prepare("INSERT INTO jobs(id, kind, owner, request_id, priority, "
                   "state, spec, create_us) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  ins.Bind(1, id).Bind(2, kind).Bind(3, job.owner);
  if (job.request_id.empty()) {
    ins.BindNull(4);
  } else {
    ins.Bind(4, job.request_id);
  }
  ins.Bind(5, job.priority)
      .Bind(6, static_cast<int64_t>(v1::QUEUED))
      .BindBlob(7, job.spec)
      .Bind(8, Micros(now));
  LVS_RETURN_IF_ERROR(ins.Run());
  if (job.kind == JobKind::kVideo) {
    LVS_RETURN_IF_ERROR(WriteCapabilities(id, job.spec));
  }
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> stored, Load(id));
  LVS_ASSIGN_OR_RETURN(out.position, Position(*stored));
  LVS_RETURN_IF_ERROR(
      Insert(id,
             QueuedEventBody(job.kind == JobKind::kVideo, now, out.position),
             -1, 0)
          .status());
  LVS_RETURN_IF_ERROR(tx.Commit());
  out.outcome = AdmitOutcome::kCreated;
  out.job = *std::move(stored);
  out.job.last_event = 1;
  return out;
}

absl::StatusOr<JobRecord> JobStore::Get(JobKind kind, const std::string& id) {
  absl::MutexLock lock(&mu_);
  LVS_ASSIGN_OR_RETURN(std::optional<JobRecord> job, Load(id));
  if (!job || job->kind != kind) {
    return absl::NotFoundError(
        absl::StrCat(JobName(kind, id), " does not exist"));
  }
  return *std::move(job);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::List(const ListQuery& q) {
  absl::MutexLock lock(&mu_);
  std::string where =
      "WHERE kind = ?1 AND (?2 = '' OR owner = ?2) AND "
      "(?3 = 0 OR state = ?3) AND (?4 = 0 OR seq < ?4) "
      "ORDER BY seq DESC LIMIT ?5";
  return Query(where, [&](SqliteStmt& st) {
    st.Bind(1, static_cast<int64_t>(q.kind))
        .Bind(2, q.owner)
        .Bind(3, static_cast<int64_t>(q.state))
        .Bind(4, q.before_seq)
        .Bind(5, static_cast<int64_t>(q.limit));
  });
}

absl::StatusOr<int64_t> JobStore::QueuePosition(const JobRecord& job) {
  absl::MutexLock lock(&mu_);
  return Position(job);
}

absl::StatusOr<std::map<int, int64_t>> JobStore::QueuedByPriority(
    JobKind kind) {
  absl::MutexLock lock(&mu_);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("SELECT priority, COUNT(*) FROM jobs WHERE kind = ? AND "
                   "state = 1 GROUP BY priority"));
  st.Bind(1, static_cast<int64_t>(kind));
  std::map<int, int64_t> out;
  while (true) {
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    out[static_cast<int>(st.Int(0))] = st.Int(1);
  }
  return out;
}

absl::StatusOr<int64_t> JobStore::CountState(JobKind kind, v1::JobState state) {
  absl::MutexLock lock(&mu_);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("SELECT COUNT(*) FROM jobs WHERE kind = ? AND state = ?"));
  st.Bind(1, static_cast<int64_t>(kind)).Bind(2, static_cast<int64_t>(state));
  LVS_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? st.Int(0) : 0;
}

absl::StatusOr<std::optional<absl::Time>> JobStore::OldestQueued(JobKind kind) {
  absl::MutexLock lock(&mu_);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("SELECT MIN(create_us) FROM jobs WHERE kind = ? AND "
                   "state = 1"));
  st.Bind(1, static_cast<int64_t>(kind));
  LVS_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row || st.IsNull(0)) return std::nullopt;
  return FromMicros(st.Int(0));
}

}  // namespace lvs::server
