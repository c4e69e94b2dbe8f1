// Tables runtimes and runtime_pushes.
#include "gedge/stores.hpp"

namespace gedge {

Result<std::vector<Completion>> RuntimeStore::completions() {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query(
          "SELECT name AS v, 'newest ' || substr(max(id), 1, 12) AS d FROM runtimes GROUP BY name "
          "UNION ALL SELECT substr(id, 1, 12) AS v, name || ' ' || created_at AS d FROM runtimes "
          "ORDER BY 1"));
  std::vector<Completion> out;
  for (const auto& r : rows) out.push_back({r["v"].get<std::string>(), r["d"].get<std::string>()});
  return out;
}

namespace {

constexpr const char* kNewestFirst = " ORDER BY created_at DESC, rowid DESC";

std::vector<RuntimeRecord> records(const std::vector<SqlRow>& rows) {
  std::vector<RuntimeRecord> out;
  out.reserve(rows.size());
  for (const auto& r : rows)
    out.push_back({r["id"].get<std::string>(), r["name"].get<std::string>(),
                   r.contains("manifest") ? r["manifest"].get<std::string>() : std::string(),
                   r["created_at"].get<std::string>()});
  return out;
}

std::optional<RuntimeRecord> first(const std::vector<SqlRow>& rows) {
  if (rows.empty()) return std::nullopt;
  return records(rows).front();
}

}  // namespace

Result<bool> RuntimeStore::exists(const std::string& id) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT id FROM runtimes WHERE id = ?", {id}));
  return !rows.empty();
}

Result<bool> RuntimeStore::add(const RuntimeRecord& r, int64_t files, int64_t bytes) {
  bool added = false;
  GEDGE_TRY(inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto rows, db.query("SELECT id FROM runtimes WHERE id = ?", {r.id}));
    added = rows.empty();
    if (added)
      GEDGE_TRY(
          db.exec("INSERT INTO runtimes (id, name, manifest, files, bytes, created_at) VALUES "
                  "(?,?,?,?,?,?)",
                  {r.id, r.name, r.manifest, files, bytes, r.created_at}));
    return {};
  }));
  return added;
}

Result<std::optional<RuntimeRecord>> RuntimeStore::get(const std::string& id) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query("SELECT id, name, manifest, created_at FROM runtimes WHERE id = ?", {id}));
  return first(rows);
}

Result<std::vector<RuntimeRecord>> RuntimeStore::with_prefix(const std::string& prefix,
                                                             int64_t limit) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT id, name, manifest, created_at FROM runtimes "
                                         "WHERE substr(id, 1, ?) = ? LIMIT ?",
                                         {static_cast<int64_t>(prefix.size()), prefix, limit}));
  return records(rows);
}

Result<std::optional<RuntimeRecord>> RuntimeStore::newest(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query(std::string("SELECT id, name, manifest, created_at FROM "
                                                     "runtimes WHERE name = ?") +
                                             kNewestFirst + " LIMIT 1",
                                         {name}));
  return first(rows);
}

Result<std::vector<RuntimeRecord>> RuntimeStore::named(const std::string& name) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query(
          std::string("SELECT id, name, created_at FROM runtimes WHERE name = ?") + kNewestFirst,
          {name}));
  return records(rows);
}

Result<std::vector<RuntimeRecord>> RuntimeStore::all() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query(std::string("SELECT id, name, manifest, created_at FROM runtimes") +
                              kNewestFirst));
  return records(rows);
}

Result<void> RuntimeStore::remove(const std::set<std::string>& ids) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    for (const auto& id : ids) {
      GEDGE_TRY(db.exec("DELETE FROM runtime_pushes WHERE runtime_id = ?", {id}));
      GEDGE_TRY(db.exec("DELETE FROM runtimes WHERE id = ?", {id}));
    }
    return {};
  });
}

Result<void> RuntimeStore::record_push(const std::string& id, const RuntimePush& push) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(
        db.exec("INSERT INTO runtime_pushes (runtime_id, target, root, pushed_at) VALUES (?,?,?,?) "
                "ON CONFLICT(runtime_id, target) DO UPDATE SET root = excluded.root, pushed_at = "
                "excluded.pushed_at",
                {id, push.target, push.root, push.pushed_at}));
    return {};
  });
}

Result<std::vector<RuntimePush>> RuntimeStore::pushes(const std::string& id) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT target, root, pushed_at FROM runtime_pushes WHERE "
                                         "runtime_id = ? ORDER BY target",
                                         {id}));
  std::vector<RuntimePush> out;
  out.reserve(rows.size());
  for (const auto& r : rows)
    out.push_back({r["target"].get<std::string>(), r["root"].get<std::string>(),
                   r["pushed_at"].get<std::string>()});
  return out;
}

}  // namespace gedge
