#include "gedge/inventory.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gedge/fd.hpp"
#include "migrations.hpp"

namespace gedge {

namespace fs = std::filesystem;
using inventory_detail::kMigrations;

namespace {

Error sql_error(sqlite3* db, std::string_view what) {
  int rc = sqlite3_extended_errcode(db);
  ErrorCode code = ErrorCode::failure;
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) code = ErrorCode::conflict;
  return Error{
      code, fmt::format("inventory: {}: {}", what, sqlite3_errmsg(db)),
      code == ErrorCode::conflict ? "another gedge process holds the inventory; retry" : ""};
}

struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

Result<Stmt> prepare(sqlite3* db, std::string_view sql, const std::vector<SqlValue>& params) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) != SQLITE_OK)
    return std::unexpected(sql_error(db, "prepare"));
  Stmt st(raw);
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    int rc = std::visit(
        [&](const auto& v) -> int {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>)
            return sqlite3_bind_null(raw, idx);
          else if constexpr (std::is_same_v<T, int64_t>)
            return sqlite3_bind_int64(raw, idx, v);
          else if constexpr (std::is_same_v<T, double>)
            return sqlite3_bind_double(raw, idx, v);
          else
            return sqlite3_bind_text(raw, idx, v.data(), static_cast<int>(v.size()),
                                     SQLITE_TRANSIENT);
        },
        params[i]);
    if (rc != SQLITE_OK) return std::unexpected(sql_error(db, "bind"));
  }
  return st;
}

Result<void> exec_script(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    Error e = sql_error(db, "exec");
    e.message = fmt::format("inventory: {}", msg);
    return std::unexpected(e);
  }
  return {};
}

}  // namespace

Inventory::~Inventory() = default;

int Inventory::latest_schema_version() {
  return static_cast<int>(kMigrations.size());
}

Result<Inventory> Inventory::open(const fs::path& path, bool create) {
  if (!create && !fs::exists(path))
    return fail(ErrorCode::not_found, fmt::format("no inventory at {}", path.string()),
                "run 'gedge init' first");
  if (create && !fs::exists(path)) {
    // Create the file 0600 ourselves so SQLite never makes it world-readable.
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd)
      return fail(ErrorCode::failure,
                  fmt::format("cannot create {}: {}", path.string(), strerror(errno)));
  }
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &raw, flags, nullptr) != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return fail(ErrorCode::failure,
                fmt::format("cannot open inventory {}: {}", path.string(), msg));
  }
  Inventory inv(raw);
  sqlite3_busy_timeout(raw, kInventoryBusyTimeoutMs);
  sqlite3_extended_result_codes(raw, 1);
  // journal_mode=WAL needs a brief exclusive lock the busy handler does not cover; retry.
  for (int attempt = 0;; ++attempt) {
    auto r = exec_script(raw, "PRAGMA journal_mode=WAL;");
    if (r) break;
    if (r.error().code != ErrorCode::conflict || attempt > 600) return std::unexpected(r.error());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  GEDGE_TRY(exec_script(raw, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"));
  GEDGE_TRY(inv.migrate());
  ::chmod(path.c_str(), 0600);
  return inv;
}

int Inventory::schema_version() const {
  sqlite3_stmt* st = nullptr;
  int v = 0;
  if (sqlite3_prepare_v2(db_.get(), "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

Result<void> Inventory::migrate() {
  int have = schema_version();
  if (have > latest_schema_version())
    return fail(ErrorCode::failure,
                fmt::format("inventory schema version {} is newer than this gedge understands ({})",
                            have, latest_schema_version()),
                "upgrade gedge; it will not downgrade a newer inventory");
  if (have == latest_schema_version()) return {};
  return write([](Inventory& inv) -> Result<void> {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    int v = inv.schema_version();
    if (v > latest_schema_version())
      return fail(ErrorCode::failure, "inventory was upgraded by a newer gedge meanwhile");
    GEDGE_TRY(exec_script(inv.raw(),
                          "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"));
    for (int i = v; i < latest_schema_version(); ++i) {
      std::string sql(kMigrations[static_cast<size_t>(i)]);
      GEDGE_TRY(exec_script(inv.raw(), sql.c_str()));
      GEDGE_TRY(
          inv.exec("INSERT INTO schema_migrations(version, applied_at) "
                   "VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                   {int64_t{i + 1}}));
      // PRAGMA cannot take a bound parameter; the value is our own integer.
      GEDGE_TRY(exec_script(inv.raw(), fmt::format("PRAGMA user_version={}", i + 1).c_str()));
    }
    return {};
  });
}

Result<std::vector<SqlRow>> Inventory::query(std::string_view sql,
                                             const std::vector<SqlValue>& params) {
  GEDGE_TRY_ASSIGN(auto st, prepare(db_.get(), sql, params));
  std::vector<SqlRow> rows;
  for (;;) {
    int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return std::unexpected(sql_error(db_.get(), "query"));
    SqlRow row = SqlRow::object();
    int n = sqlite3_column_count(st.get());
    for (int c = 0; c < n; ++c) {
      const char* name = sqlite3_column_name(st.get(), c);
      switch (sqlite3_column_type(st.get(), c)) {
        case SQLITE_INTEGER:
          row[name] = sqlite3_column_int64(st.get(), c);
          break;
        case SQLITE_FLOAT:
          row[name] = sqlite3_column_double(st.get(), c);
          break;
        case SQLITE_NULL:
          row[name] = nullptr;
          break;
        default: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), c));
          row[name] =
              std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st.get(), c)));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<int64_t> Inventory::exec(std::string_view sql, const std::vector<SqlValue>& params) {
  GEDGE_TRY_ASSIGN(auto st, prepare(db_.get(), sql, params));
  for (;;) {
    int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return std::unexpected(sql_error(db_.get(), "write"));
  }
  return static_cast<int64_t>(sqlite3_changes(db_.get()));
}

int64_t Inventory::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}

Result<void> Inventory::write(const std::function<Result<void>(Inventory&)>& body) {
  if (depth_ > 0) {
    ++depth_;
    auto r = body(*this);
    --depth_;
    return r;
  }
  // BEGIN IMMEDIATE takes the write lock up front (waiting via the busy handler), so two
  // writers never deadlock upgrading read locks.
  GEDGE_TRY(exec_script(db_.get(), "BEGIN IMMEDIATE"));
  ++depth_;
  auto r = body(*this);
  --depth_;
  if (!r) {
    exec_script(db_.get(), "ROLLBACK");
    return r;
  }
  auto c = exec_script(db_.get(), "COMMIT");
  if (!c) {
    exec_script(db_.get(), "ROLLBACK");
    return c;
  }
  return {};
}

}  // namespace gedge
