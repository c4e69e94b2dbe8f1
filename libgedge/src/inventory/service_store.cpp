// Table services: what `svc deploy` recorded.
#include "gedge/report.hpp"
#include "gedge/stores.hpp"

namespace gedge {

Result<bool> ServiceStore::exists(const std::string& name, const std::string& cluster) {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query("SELECT 1 AS one FROM services WHERE name = ? AND (? = '' OR cluster = ?)",
                 {name, cluster, cluster}));
  return !rows.empty();
}

Result<std::vector<Completion>> ServiceStore::completions() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT DISTINCT name, cluster FROM services ORDER BY name"));
  std::vector<Completion> out;
  for (const auto& r : rows)
    out.push_back({r["name"].get<std::string>(), r["cluster"].get<std::string>()});
  return out;
}

namespace {

constexpr const char* kColumns =
    "SELECT name, cluster, spec, placement, state, namespace, replicas, updated_at FROM services ";

std::string text(const SqlRow& v) {
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::vector<ServiceRecord> records(const std::vector<SqlRow>& rows) {
  std::vector<ServiceRecord> out;
  for (const auto& r : rows) {
    ServiceRecord s{text(r["name"]), text(r["cluster"]), text(r["spec"]), std::nullopt,
                    text(r["state"])};
    if (r["placement"].is_string()) s.placement = r["placement"].get<std::string>();
    s.namespace_ = text(r["namespace"]);
    s.replicas = r["replicas"].is_number_integer() ? r["replicas"].get<int64_t>() : 0;
    s.updated_at = text(r["updated_at"]);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Result<std::vector<ServiceRecord>> ServiceStore::all() {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query(kColumns));
  return records(rows);
}

Result<std::vector<ServiceRecord>> ServiceStore::find(const std::string& name,
                                                      const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query(std::string(kColumns) +
                                  "WHERE name = ? AND (? = '' OR cluster = ?) ORDER BY cluster",
                              {name, cluster, cluster}));
  return records(rows);
}

Result<std::vector<ServiceRecord>> ServiceStore::list(const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query(std::string(kColumns) +
                                             "WHERE (? = '' OR cluster = ?) ORDER BY cluster, name",
                                         {cluster, cluster}));
  return records(rows);
}

Result<void> ServiceStore::put(const ServiceRecord& rec) {
  std::string now = now_rfc3339();
  return inv_.write([&](Inventory& w) -> Result<void> {
    GEDGE_TRY(
        w.exec("INSERT INTO services (name, cluster, namespace, spec, placement, state, replicas, "
               "created_at, updated_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, cluster) DO UPDATE SET "
               "namespace = excluded.namespace, "
               "spec = excluded.spec, placement = excluded.placement, state = excluded.state, "
               "replicas = excluded.replicas, "
               "updated_at = excluded.updated_at",
               {rec.name, rec.cluster, rec.namespace_, rec.spec,
                rec.placement ? SqlValue{*rec.placement} : SqlValue{nullptr}, rec.state,
                rec.replicas, now, now}));
    return {};
  });
}

Result<bool> ServiceStore::set_state(const std::string& name, const std::string& cluster,
                                     const std::string& state) {
  int64_t changed = 0;
  GEDGE_TRY(inv_.write([&](Inventory& w) -> Result<void> {
    GEDGE_TRY_ASSIGN(
        changed,
        w.exec("UPDATE services SET state = ?, updated_at = ? WHERE name = ? AND cluster = ?",
               {state, now_rfc3339(), name, cluster}));
    return {};
  }));
  return changed > 0;
}

Result<bool> ServiceStore::remove(const std::string& name, const std::string& cluster) {
  int64_t changed = 0;
  GEDGE_TRY(inv_.write([&](Inventory& w) -> Result<void> {
    GEDGE_TRY_ASSIGN(
        changed, w.exec("DELETE FROM services WHERE name = ? AND cluster = ?", {name, cluster}));
    return {};
  }));
  return changed > 0;
}

}  // namespace gedge
