// Table devices.
#include <fmt/format.h>
#include <sqlite3.h>

#include <map>
#include <memory>

#include "gedge/stores.hpp"

namespace gedge {

namespace {

std::string text(const SqlRow& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

Result<std::string> DeviceStore::topology_xml(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT topology_xml FROM devices WHERE name = ?", {name}));
  if (rows.empty())
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", name),
                "see 'gedge device ls'");
  const auto& xml = rows.front()["topology_xml"];
  return xml.is_string() ? xml.get<std::string>() : std::string();
}

Result<std::vector<Completion>> DeviceStore::completions() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT name, host || ' ' || COALESCE(status, '') AS d FROM devices "
                              "ORDER BY name"));
  std::vector<Completion> out;
  for (const auto& r : rows) out.push_back({text(r["name"]), text(r["d"])});
  return out;
}

Result<std::optional<std::string>> DeviceStore::facts(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT facts FROM devices WHERE name = ?", {name}));
  if (rows.empty() || !rows.front()["facts"].is_string()) return std::optional<std::string>{};
  return std::optional<std::string>{rows.front()["facts"].get<std::string>()};
}

Result<std::optional<SqlRow>> DeviceStore::row(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT * FROM devices WHERE name = ?", {name}));
  if (rows.empty()) return std::optional<SqlRow>{};
  return std::optional<SqlRow>{std::move(rows.front())};
}

namespace {

SqlValue nullable(const std::optional<std::string>& v) {
  return v ? SqlValue(*v) : SqlValue(nullptr);
}

// The filter's tier, groups and labels as a WHERE clause over `devices` with bound (text)
// parameters, so SQLite skips the rows that do not match before gedge parses anything.
std::string filter_where(const DeviceFilter& f, std::vector<SqlValue>& params) {
  std::string where;
  auto add = [&where](std::string_view cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (!f.tier.empty()) {
    add("tier = ?");
    params.emplace_back(f.tier);
  }
  for (const auto& g : f.groups) {
    add("CASE WHEN json_valid(groups) AND json_type(groups) = 'array' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.groups) WHERE type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(g);
  }
  for (const auto& [k, v] : f.labels) {
    add("CASE WHEN json_valid(labels) AND json_type(labels) = 'object' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.labels) WHERE key = ? AND type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(k);
    params.emplace_back(v);
  }
  return where;
}

// A statement's current row, read in place; strings reuse one buffer.
class StmtRowView final : public DeviceRowView {
 public:
  explicit StmtRowView(sqlite3_stmt* st) : st_(st) {
    for (int c = 0; c < sqlite3_column_count(st); ++c) index_[sqlite3_column_name(st, c)] = c;
  }
  int column(std::string_view name) const override {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  const SqlRow& value(int c) override {
    if (c < 0) return null_;
    switch (sqlite3_column_type(st_, c)) {
      case SQLITE_INTEGER:
        number_ = sqlite3_column_int64(st_, c);
        return number_;
      case SQLITE_FLOAT:
        number_ = sqlite3_column_double(st_, c);
        return number_;
      case SQLITE_NULL:
        return null_;
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
        text_.get_ref<std::string&>().assign(
            p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(st_, c)));
        return text_;
      }
    }
  }

 private:
  sqlite3_stmt* st_;
  std::map<std::string, int, std::less<>> index_;
  SqlRow text_ = std::string(), number_, null_;
};

// The columns device add writes, in the order record_values binds them (then name, and for an
// insert created_at).
constexpr const char* kRecordColumns[] = {
    "host",      "port",          "user",        "identity",   "tier",        "site",
    "labels",    "host_key_type", "host_key_fp", "token_hash", "facts",       "topology_xml",
    "last_seen", "rtt_ms",        "updated_at",  "alias",      "certificate", "identity_agent",
    "auth",      "proxy_jump",    "groups"};

std::vector<SqlValue> record_values(const DeviceRecord& d) {
  return {d.host,
          d.port,
          d.user,
          nullable(d.identity),
          nullable(d.tier),
          nullable(d.site),
          d.labels,
          d.host_key_type,
          d.host_key_fp,
          d.token_hash,
          d.facts,
          nullable(d.topology_xml),
          d.now,
          d.rtt_ms,
          d.now,
          nullable(d.alias),
          nullable(d.certificate),
          nullable(d.identity_agent),
          d.auth,
          nullable(d.proxy_jump),
          d.groups,
          d.name};
}

}  // namespace

Result<std::vector<SqlRow>> DeviceStore::at_address(const std::string& host, int64_t port) {
  return inv_.query("SELECT * FROM devices WHERE host = ? AND port = ? ORDER BY name",
                    {host, port});
}

Result<std::vector<SqlRow>> DeviceStore::behind_jumps() {
  return inv_.query("SELECT * FROM devices WHERE proxy_jump IS NOT NULL ORDER BY name");
}

Result<std::optional<std::string>> DeviceStore::with_token(const std::string& token_hash,
                                                           const std::string& except) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT name FROM devices WHERE token_hash = ? AND name <> ? "
                              "ORDER BY name LIMIT 1",
                              {token_hash, except}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(rows.front()["name"].get<std::string>());
}

Result<std::vector<std::string>> DeviceStore::names(const DeviceFilter& filter) {
  std::vector<SqlValue> params;
  std::string where = filter_where(filter, params);
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT name FROM devices" + where + " ORDER BY name", params));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r["name"].get_ref<std::string&>()));
  return out;
}

Result<std::vector<SqlRow>> DeviceStore::rows(const DeviceFilter& filter) {
  std::vector<SqlValue> params;
  std::string where = filter_where(filter, params);
  return inv_.query("SELECT * FROM devices" + where + " ORDER BY name", params);
}

Result<std::vector<SqlRow>> DeviceStore::rows_named(const std::vector<std::string>& names) {
  std::string list =
      nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return inv_.query("SELECT * FROM devices WHERE name IN (SELECT value FROM json_each(?))", {list});
}

Result<void> DeviceStore::scan(const DeviceFilter& filter,
                               const std::function<void(DeviceRowView&)>& row) {
  std::vector<SqlValue> params;
  std::string sql = "SELECT * FROM devices" + filter_where(filter, params) + " ORDER BY name";
  sqlite3* db = inv_.raw();
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    return fail(ErrorCode::failure, fmt::format("inventory: prepare: {}", sqlite3_errmsg(db)));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, sqlite3_finalize);
  for (std::size_t i = 0; i < params.size(); ++i) {  // the filter binds only text
    const auto& v = std::get<std::string>(params[i]);
    if (sqlite3_bind_text(raw, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK)
      return fail(ErrorCode::failure, fmt::format("inventory: bind: {}", sqlite3_errmsg(db)));
  }
  StmtRowView view(raw);
  for (;;) {
    int rc = sqlite3_step(raw);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW)
      return fail(ErrorCode::failure, fmt::format("inventory: query: {}", sqlite3_errmsg(db)));
    row(view);
  }
  return {};
}

Result<void> DeviceStore::insert(const DeviceRecord& d) {
  std::string cols, marks;
  for (const char* c : kRecordColumns) cols += std::string(c) + ", ", marks += "?, ";
  auto values = record_values(d);
  values.emplace_back(d.now);  // created_at
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(db.exec("INSERT INTO devices (" + cols + "name, created_at, status) VALUES (" +
                          marks + "?, ?, 'ok')",
                      values));
    return {};
  });
}

Result<void> DeviceStore::update(const DeviceRecord& d) {
  std::string set;
  for (const char* c : kRecordColumns) set += std::string(c) + "=?, ";
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(db.exec("UPDATE devices SET " + set + "status='ok' WHERE name=?", record_values(d)));
    return {};
  });
}

Result<void> DeviceStore::insert_imported(const ImportedDevice& d) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(db.exec(
        "INSERT INTO devices (name, host, port, user, identity, labels, groups, host_key_type, "
        "host_key_fp, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,'unknown',?,?)",
        {d.name, d.host, d.port, d.user, nullable(d.identity), d.labels, d.groups,
         nullable(d.host_key_type), nullable(d.host_key_fp), d.now, d.now}));
    return {};
  });
}

Result<void> DeviceStore::set_groups(const std::string& name, const std::string& groups,
                                     const std::string& now) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(
        db.exec("UPDATE devices SET groups=?, updated_at=? WHERE name=?", {groups, now, name}));
    return {};
  });
}

Result<void> DeviceStore::pin_key(const std::string& name, const std::string& type,
                                  const std::string& fingerprint) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(db.exec("UPDATE devices SET host_key_type=?, host_key_fp=? WHERE name=?",
                      {type, fingerprint, name}));
    return {};
  });
}

Result<void> DeviceStore::rekey(const std::vector<std::string>& names, const std::string& type,
                                const std::string& fingerprint, const std::string& now) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    for (const auto& n : names)
      GEDGE_TRY(
          db.exec("UPDATE devices SET host_key_type=?, host_key_fp=?, status='unknown', "
                  "updated_at=? WHERE name=?",
                  {type, fingerprint, now, n}));
    return {};
  });
}

Result<void> DeviceStore::set_proxy_jump(const std::string& name, const std::string& proxy_jump,
                                         const std::string& now) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY(db.exec("UPDATE devices SET proxy_jump=?, updated_at=? WHERE name=?",
                      {proxy_jump, now, name}));
    return {};
  });
}

Result<void> DeviceStore::record_checks(const std::vector<DeviceCheck>& checks,
                                        const std::string& now) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    for (const auto& c : checks) {
      if (c.status == "ok") {
        GEDGE_TRY(
            db.exec("UPDATE devices SET status='ok', last_seen=?, rtt_ms=?, facts=?, "
                    "topology_xml=?, updated_at=? WHERE name=?",
                    {now, c.rtt_ms, c.facts, nullable(c.topology_xml), now, c.name}));
      } else if (c.status == "token_mismatch") {
        GEDGE_TRY(
            db.exec("UPDATE devices SET status=?, last_seen=?, rtt_ms=?, updated_at=? WHERE name=?",
                    {c.status, now, c.rtt_ms, now, c.name}));
      } else {
        GEDGE_TRY(db.exec("UPDATE devices SET status=?, updated_at=? WHERE name=?",
                          {c.status, now, c.name}));
      }
    }
    return {};
  });
}

Result<void> DeviceStore::record_exec(
    const std::vector<std::pair<std::string, std::string>>& statuses, const std::string& now) {
  return inv_.write([&](Inventory& db) -> Result<void> {
    for (const auto& [name, st] : statuses) {
      if (st == "ok" || st == "failed")
        GEDGE_TRY(db.exec("UPDATE devices SET last_seen=?, status='ok' WHERE name=?", {now, name}));
      else
        GEDGE_TRY(db.exec("UPDATE devices SET status=? WHERE name=?", {st, name}));
    }
    return {};
  });
}

Result<bool> DeviceStore::remove(const std::string& name) {
  bool removed = false;
  GEDGE_TRY(inv_.write([&](Inventory& db) -> Result<void> {
    GEDGE_TRY_ASSIGN(auto n, db.exec("DELETE FROM devices WHERE name = ?", {name}));
    removed = n > 0;
    return {};
  }));
  return removed;
}

}  // namespace gedge
