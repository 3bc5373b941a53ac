// A thin RAII layer over the SQLite C API: a connection and prepared
// statements with typed binds and columns, every failure an absl::Status that
// names the SQL and SQLite's message.
//
// Thread-safety: a `SqliteDb` and its statements are used by one thread at a
// time; callers serialise access (JobStore holds a mutex).
#ifndef LVS_SERVER_SQLITE_H_
#define LVS_SERVER_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace lvs::server {

class SqliteDb;

// One prepared statement. Binds are 1-based like SQLite's; columns 0-based.
class SqliteStmt {
 public:
  SqliteStmt(SqliteStmt&& other) noexcept;
  SqliteStmt& operator=(SqliteStmt&&) = delete;
  ~SqliteStmt();

  // Binds a value to parameter `i`.
  SqliteStmt& Bind(int i, int64_t v);
  SqliteStmt& Bind(int i, const std::string& v);
  // Binds `v` as a BLOB (protobuf bytes).
  SqliteStmt& BindBlob(int i, const std::string& v);
  // Binds NULL.
  SqliteStmt& BindNull(int i);

  // Advances to the next row: true with a row, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows.
  absl::Status Run();

  // Reads column `i` of the current row.
  int64_t Int(int i) const;
  std::string Text(int i) const;
  bool IsNull(int i) const;

 private:
  friend class SqliteDb;
  SqliteStmt(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string sql_;
};

// An open database connection.
class SqliteDb {
 public:
  // Opens (creating) the database file at `path`.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(
      const std::string& path);
  ~SqliteDb();

  // Runs one or more statements without parameters.
  absl::Status Exec(const std::string& sql);
  // Prepares one statement.
  absl::StatusOr<SqliteStmt> Prepare(const std::string& sql);
  // Number of rows changed by the last statement.
  int Changes() const;

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Runs `BEGIN IMMEDIATE` and rolls back on destruction unless committed.
class SqliteTransaction {
 public:
  // Begins the transaction; check `status()` before using it.
  explicit SqliteTransaction(SqliteDb* db);
  ~SqliteTransaction();

  // Whether BEGIN succeeded.
  const absl::Status& status() const { return status_; }
  // Commits; after this the destructor does nothing.
  absl::Status Commit();

 private:
  SqliteDb* db_;
  absl::Status status_;
  bool done_ = false;
};

}  // namespace lvs::server

#endif  // LVS_SERVER_SQLITE_H_
