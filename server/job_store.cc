#include "server/job_store.h"

#include <algorithm>
#include <climits>
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

// A job state as an SQL parameter: states are never written into SQL text.
int64_t State(v1::JobState state) { return static_cast<int64_t>(state); }

// Parses `bytes` into `*out` when there are any.
template <typename T>
void ParseInto(const std::string& bytes, std::optional<T>* out) {
  if (bytes.empty()) return;
  out->emplace();
  if (!(*out)->ParseFromString(bytes)) out->reset();
}

// The serialized columns of a row of `job`'s kind, parsed into `job`.
void ParseColumns(const std::string& spec, const std::string& error,
                  const std::string& result, const std::string& progress,
                  const std::string& checkpoint, JobRecord* job) {
  ParseInto(error, &job->error);
  if (job->kind == JobKind::kVideo) {
    job->request.ParseFromString(spec);
    job->progress.ParseFromString(progress);
    ParseInto(result, &job->completed);
  } else {
    job->training_spec.ParseFromString(spec);
    ParseInto(progress, &job->last_step);
    ParseInto(checkpoint, &job->checkpoint);
    ParseInto(result, &job->training_completed);
  }
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

absl::Status CheckTransition(v1::JobState from, v1::JobState to) {
  struct Edge {
    v1::JobState from, to;
  };
  static constexpr Edge kEdges[] = {
      {v1::QUEUED, v1::RUNNING}, {v1::QUEUED, v1::CANCELLED},
      {v1::RUNNING, v1::QUEUED}, {v1::RUNNING, v1::SUCCEEDED},
      {v1::RUNNING, v1::FAILED}, {v1::RUNNING, v1::CANCELLED},
  };
  for (const Edge& e : kEdges) {
    if (e.from == from && e.to == to) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("a job cannot move from ", v1::JobState_Name(from), " to ",
                   v1::JobState_Name(to)));
}

JobStore::JobStore(const JobStoreOptions& options, Clock* clock,
                   std::unique_ptr<SqliteDb> db,
                   std::unique_ptr<SqliteDb> read_db)
    : options_(options),
      clock_(clock),
      db_(std::move(db)),
      results_(options.data_dir + "/results"),
      read_db_(std::move(read_db)) {
  StoreWriterOptions w;
  w.max_queued = options.max_pending_admissions;
  w.commit_delay = options.commit_delay;
  w.before_commit = [this] { return SyncResults(); };
  w.after_batch = [this](bool ok) { AfterBatch(ok); };
  writer_ = std::make_unique<StoreWriter>(db_.get(), std::move(w));
}

JobStore::~JobStore() { writer_.reset(); }

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(
    const JobStoreOptions& options, Clock* clock) {
  ResultFiles dirs(options.data_dir + "/results");
  LVS_RETURN_IF_ERROR(dirs.Init());
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> db,
                       SqliteDb::Open(options.data_dir + "/lvs.db"));
  LVS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
  LVS_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  LVS_RETURN_IF_ERROR(db->Exec(kSchema));
  LVS_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDb> read_db,
                       SqliteDb::Open(options.data_dir + "/lvs.db"));
  std::unique_ptr<JobStore> store(
      new JobStore(options, clock, std::move(db), std::move(read_db)));
  LVS_RETURN_IF_ERROR(store->WriteStatus([s = store.get()] {
    LVS_RETURN_IF_ERROR(s->AddCapabilityColumns());
    LVS_RETURN_IF_ERROR(s->RebuildIndex());
    return s->DoRequeueRunning("server restarted").status();
  }));
  return store;
}

absl::Status JobStore::WriteStatus(std::function<absl::Status()> fn) {
  return writer_->Call(std::move(fn));
}

void JobStore::SetChangeObserver(ChangeObserver observer) {
  absl::MutexLock lock(&observer_mu_);
  observer_ = std::move(observer);
}

void JobStore::Flush() { writer_->Flush(); }

void JobStore::SetCommitDelay(absl::Duration delay) {
  writer_->SetCommitDelay(delay);
}

void JobStore::SetCommitError(absl::Status error) {
  absl::MutexLock lock(&commit_error_mu_);
  commit_error_ = std::move(error);
}

absl::Status JobStore::SyncResults() {
  {
    absl::MutexLock lock(&commit_error_mu_);
    if (!commit_error_.ok()) return commit_error_;
  }
  std::sort(dirty_results_.begin(), dirty_results_.end());
  dirty_results_.erase(
      std::unique(dirty_results_.begin(), dirty_results_.end()),
      dirty_results_.end());
  absl::Status status;
  for (const std::string& id : dirty_results_) {
    absl::Status s = results_.Sync(id);
    if (status.ok()) status = s;
  }
  dirty_results_.clear();
  return status;
}

void JobStore::AfterBatch(bool ok) {
  dirty_results_.clear();
  if (!ok) {
    absl::Status rebuilt = RebuildIndex();
    (void)rebuilt;        // The next failed batch tries again.
    queue_moved_ = true;  // Undone changes may have moved it back.
  }
  if (changed_.empty() && !queue_moved_) return;
  std::sort(changed_.begin(), changed_.end());
  changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
  ChangeObserver observer;
  {
    absl::MutexLock lock(&observer_mu_);
    observer = observer_;
  }
  if (observer) {
    writer_->Post([observer, ids = std::move(changed_), moved = queue_moved_] {
      observer(ids, moved);
    });
  }
  changed_.clear();
  queue_moved_ = false;
}

absl::Status JobStore::RebuildIndex() {
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db_->Prepare("SELECT kind, priority, seq, id FROM jobs WHERE state = ?"));
  st.Bind(1, State(v1::QUEUED));
  QueueIndex index;
  while (true) {
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    index.Add(static_cast<int>(st.Int(0)), static_cast<int>(st.Int(1)),
              st.Int(2), st.Text(3));
  }
  absl::MutexLock lock(&index_mu_);
  index_ = std::move(index);
  return absl::OkStatus();
}

absl::Status JobStore::AddCapabilityColumns() {
  LVS_ASSIGN_OR_RETURN(SqliteStmt info,
                       db_->Prepare("SELECT COUNT(*) FROM pragma_table_info("
                                    "'jobs') WHERE name = 'frames'"));
  LVS_ASSIGN_OR_RETURN(bool row, info.Step());
  if (row && info.Int(0) > 0) return absl::OkStatus();
  // A database written before the capability columns: add them and fill
  // them from each video job's request.
  LVS_RETURN_IF_ERROR(db_->Exec(
      "ALTER TABLE jobs ADD COLUMN model TEXT NOT NULL DEFAULT '';"
      "ALTER TABLE jobs ADD COLUMN width INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE jobs ADD COLUMN height INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE jobs ADD COLUMN frames INTEGER NOT NULL DEFAULT 0;"));
  LVS_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs,
                       Query(db_.get(), "WHERE kind = ?", [](SqliteStmt& st) {
                         st.Bind(1, static_cast<int64_t>(JobKind::kVideo));
                       }));
  for (const JobRecord& job : jobs) {
    LVS_RETURN_IF_ERROR(WriteCapabilities(job.id, job.request));
  }
  return absl::OkStatus();
}

absl::Status JobStore::WriteCapabilities(const std::string& id,
                                         const v1::GenerateVideoRequest& req) {
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
    SqliteDb* db, const std::string& where_sql,
    const std::function<void(SqliteStmt&)>& bind) {
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt st,
      db->Prepare(absl::StrCat("SELECT ", kColumns, " FROM jobs ", where_sql)));
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
    const std::string spec = st.Text(7);
    r.create_time = FromMicros(st.Int(8));
    r.start_time = FromMicros(st.Int(9));
    r.end_time = FromMicros(st.Int(10));
    r.expire_time = FromMicros(st.Int(11));
    r.attempts = static_cast<int>(st.Int(12));
    r.worker = st.Text(13);
    r.lease_id = st.Text(14);
    r.lease_expire = FromMicros(st.Int(15));
    r.last_event = st.Int(20);
    ParseColumns(spec, st.Text(16), st.Text(17), st.Text(18), st.Text(19), &r);
    if (r.kind == JobKind::kVideo) r.result_bytes = results_.Size(r.id);
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<std::optional<JobRecord>> JobStore::Load(const std::string& id) {
  LVS_ASSIGN_OR_RETURN(std::vector<JobRecord> rows,
                       Query(db_.get(), "WHERE id = ?",
                             [&](SqliteStmt& st) { st.Bind(1, id); }));
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
  changed_.push_back(id);
  return seq;
}

int64_t JobStore::Position(const JobRecord& job) {
  if (job.state != v1::QUEUED) return 0;
  absl::MutexLock lock(&index_mu_);
  return index_.Position(static_cast<int>(job.kind), job.priority, job.seq);
}

absl::Status JobStore::Transition(
    const JobRecord& job, v1::JobState to, const std::string& set_sql,
    const std::function<void(SqliteStmt&)>& bind) {
  LVS_RETURN_IF_ERROR(CheckTransition(job.state, to));
  LVS_ASSIGN_OR_RETURN(SqliteStmt st, db_->Prepare(absl::StrCat(
                                          "UPDATE jobs SET state = ?1",
                                          set_sql.empty() ? "" : ", ", set_sql,
                                          " WHERE id = ?2 AND state = ?3")));
  st.Bind(1, State(to)).Bind(2, job.id).Bind(3, State(job.state));
  bind(st);
  LVS_RETURN_IF_ERROR(st.Run());
  if (db_->Changes() != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id, " is no longer ", v1::JobState_Name(job.state)));
  }
  changed_.push_back(job.id);
  absl::MutexLock lock(&index_mu_);
  if (job.state == v1::QUEUED) {
    index_.Remove(job.id);
    queue_moved_ = true;
  }
  if (to == v1::QUEUED) {
    queue_moved_ =
        index_.Add(static_cast<int>(job.kind), job.priority, job.seq, job.id) ||
        queue_moved_;
  }
  return absl::OkStatus();
}

absl::StatusOr<AdmitResult> JobStore::Admit(const NewJob& job,
                                            const AdmitLimits& limits) {
  return Write<AdmitResult>([&] { return DoAdmit(job, limits); });
}

absl::Status JobStore::AdmitAsync(NewJob job, AdmitLimits limits,
                                  Callback<AdmitResult> done) {
  return WriteAsync<AdmitResult>(
      [this, job = std::move(job), limits] { return DoAdmit(job, limits); },
      std::move(done), /*bounded=*/true);
}

absl::StatusOr<AdmitResult> JobStore::DoAdmit(const NewJob& job,
                                              const AdmitLimits& limits) {
  AdmitResult out;
  const int64_t kind = static_cast<int64_t>(job.kind);
  if (!job.request_id.empty()) {
    LVS_ASSIGN_OR_RETURN(
        std::vector<JobRecord> same,
        Query(db_.get(), "WHERE kind = ? AND owner = ? AND request_id = ?",
              [&](SqliteStmt& st) {
                st.Bind(1, kind).Bind(2, job.owner).Bind(3, job.request_id);
              }));
    if (!same.empty()) {
      out.outcome = AdmitOutcome::kExisting;
      out.job = std::move(same[0]);
      return out;
    }
  }
  // ?1 kind, ?2 owner, ?3 QUEUED, ?4 RUNNING.
  auto count = [&](const char* sql) -> absl::StatusOr<int64_t> {
    LVS_ASSIGN_OR_RETURN(SqliteStmt st, db_->Prepare(sql));
    st.Bind(1, kind)
        .Bind(2, job.owner)
        .Bind(3, State(v1::QUEUED))
        .Bind(4, State(v1::RUNNING));
    LVS_ASSIGN_OR_RETURN(bool row, st.Step());
    return row ? st.Int(0) : 0;
  };
  if (limits.max_queue > 0) {
    int64_t queued;
    {
      absl::MutexLock lock(&index_mu_);
      queued = index_.Count(static_cast<int>(job.kind));
    }
    if (queued >= limits.max_queue) {
      out.outcome = AdmitOutcome::kQueueFull;
      out.limit = limits.max_queue;
      return out;
    }
  }
  struct Check {
    int64_t limit;
    const char* sql;
    AdmitOutcome outcome;
  };
  const Check checks[] = {
      {limits.owner_max_active,
       "SELECT COUNT(*) FROM jobs WHERE kind = ?1 AND owner = ?2 AND state IN "
       "(?3, ?4)",
       AdmitOutcome::kOwnerActiveFull},
      {limits.owner_max_queued,
       "SELECT COUNT(*) FROM jobs WHERE kind = ?1 AND owner = ?2 AND "
       "state = ?3",
       AdmitOutcome::kOwnerQueuedFull},
  };
  for (const Check& c : checks) {
    if (c.limit <= 0) continue;
    LVS_ASSIGN_OR_RETURN(int64_t n, count(c.sql));
    if (n >= c.limit) {
      out.outcome = c.outcome;
      out.limit = c.limit;
      return out;
    }
  }
  const absl::Time now = clock_->Now();
  JobRecord stored;
  stored.id = NewId();
  stored.kind = job.kind;
  stored.owner = job.owner;
  stored.request_id = job.request_id;
  stored.priority = job.priority;
  stored.state = v1::QUEUED;
  stored.create_time = now;
  stored.last_event = 1;  // The Queued event below.
  // The capability columns, matched by LeaseNext.
  v1::GenerateVideoRequest req;
  if (job.kind == JobKind::kVideo) {
    stored.request = job.request;
    req = job.request;
  } else {
    stored.training_spec = job.training_spec;
  }
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt ins,
      db_->Prepare("INSERT INTO jobs(id, kind, owner, request_id, priority, "
                   "state, spec, create_us, last_event, model, width, "
                   "height, frames) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, "
                   "?, ?) RETURNING seq"));
  ins.Bind(1, stored.id).Bind(2, kind).Bind(3, job.owner);
  if (job.request_id.empty()) {
    ins.BindNull(4);
  } else {
    ins.Bind(4, job.request_id);
  }
  ins.Bind(5, job.priority)
      .Bind(6, State(v1::QUEUED))
      .BindBlob(7, job.kind == JobKind::kVideo
                       ? job.request.SerializeAsString()
                       : job.training_spec.SerializeAsString())
      .Bind(8, Micros(now))
      .Bind(9, req.model())
      .Bind(10, static_cast<int64_t>(req.width()))
      .Bind(11, static_cast<int64_t>(req.height()))
      .Bind(12, static_cast<int64_t>(req.frames()));
  LVS_ASSIGN_OR_RETURN(bool row, ins.Step());
  if (!row) return absl::InternalError("INSERT INTO jobs returned no seq");
  stored.seq = ins.Int(0);
  LVS_RETURN_IF_ERROR(ins.Step().status());
  {
    absl::MutexLock lock(&index_mu_);
    queue_moved_ = index_.Add(static_cast<int>(stored.kind), stored.priority,
                              stored.seq, stored.id) ||
                   queue_moved_;
  }
  out.position = Position(stored);
  LVS_ASSIGN_OR_RETURN(
      SqliteStmt event,
      db_->Prepare("INSERT INTO events(job, seq, body) VALUES(?, 1, ?)"));
  event.Bind(1, stored.id)
      .BindBlob(
          2, QueuedEventBody(job.kind == JobKind::kVideo, now, out.position));
  LVS_RETURN_IF_ERROR(event.Run());
  changed_.push_back(stored.id);
  out.outcome = AdmitOutcome::kCreated;
  out.job = std::move(stored);
  return out;
}

}  // namespace lvs::server
