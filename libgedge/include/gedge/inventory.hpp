// The SQLite inventory: one database per GEDGE_HOME, WAL, numbered migrations, every write in a
// transaction, bound parameters only. Its tables are read and written through the typed stores
// (gedge/stores.hpp); the raw statement API is private to the inventory module.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "gedge/error.hpp"

namespace gedge {

// A value bound to a `?` parameter.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;
// One row: column name -> value (integers, reals, text; NULL as null).
using SqlRow = nlohmann::json;

class PinStore;
class DeviceStore;
class ClusterStore;
class JournalStore;
class ServiceStore;
class RuntimeStore;
class RttStore;
class RequestQueue;
struct InventoryRaw;

class Inventory {
 public:
  // Opens (and with create=true, creates 0600) the database, applies pending migrations.
  // not_found when the file is missing and create is false; failure when the database was
  // written by a newer gedge.
  static Result<Inventory> open(const std::filesystem::path& db, bool create);

  Inventory(Inventory&&) noexcept = default;
  Inventory& operator=(Inventory&&) noexcept = default;
  ~Inventory();

  // Schema version recorded in the database (number of applied migrations).
  int schema_version() const;
  // Number of migrations this gedge knows.
  static int latest_schema_version();

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error). Busy databases are
  // waited for (busy timeout), never reported as "database is locked" until the timeout.
  Result<void> write(const std::function<Result<void>(Inventory&)>& body);

 private:
  // The raw statement API: for the stores (libgedge/src/inventory/) and, through InventoryRaw
  // (libgedge/src/inventory/raw.hpp), the unit tests' fixtures. Nothing else writes SQL.
  friend class PinStore;
  friend class DeviceStore;
  friend class ClusterStore;
  friend class JournalStore;
  friend class ServiceStore;
  friend class RuntimeStore;
  friend class RttStore;
  friend class RequestQueue;
  friend struct InventoryRaw;
  // Runs one statement with bound parameters; returns the rows it produced.
  Result<std::vector<SqlRow>> query(std::string_view sql, const std::vector<SqlValue>& params = {});
  // Runs one statement; returns the number of rows changed.
  Result<int64_t> exec(std::string_view sql, const std::vector<SqlValue>& params = {});
  int64_t last_insert_rowid() const;
  sqlite3* raw() const { return db_.get(); }

  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  explicit Inventory(sqlite3* db) : db_(db) {}
  Result<void> migrate();
  std::unique_ptr<sqlite3, Closer> db_;
  int depth_ = 0;  // nested write() calls run in the outer transaction
};

// Busy timeout used for every connection, in milliseconds.
inline constexpr int kInventoryBusyTimeoutMs = 60000;

}  // namespace gedge
