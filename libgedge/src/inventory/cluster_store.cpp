// Tables clusters and cluster_members.
#include "gedge/report.hpp"
#include "gedge/stores.hpp"

namespace gedge {

Result<bool> ClusterStore::exists(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT 1 AS one FROM clusters WHERE name = ?", {name}));
  return !rows.empty();
}

Result<std::vector<Completion>> ClusterStore::completions() {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT name, kind FROM clusters ORDER BY name"));
  std::vector<Completion> out;
  for (const auto& r : rows)
    out.push_back({r["name"].get<std::string>(), r["kind"].get<std::string>()});
  return out;
}

namespace {

std::string str(const SqlRow& v) {
  return v.is_string() ? v.get<std::string>() : std::string();
}

}  // namespace

Result<std::vector<ClusterSummary>> ClusterStore::list() {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT name, kind, tier FROM clusters ORDER BY name"));
  std::vector<ClusterSummary> out;
  for (const auto& r : rows) out.push_back({str(r["name"]), str(r["kind"]), str(r["tier"])});
  return out;
}

// "Members of a cluster": this query, with the device row, and member_names below.
Result<std::vector<MemberDevice>> ClusterStore::member_devices() {
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv_.query("SELECT m.cluster AS cluster, m.device AS device, m.state AS mstate, "
                 "d.tier AS tier, d.labels AS labels, d.facts AS facts, d.status AS status "
                 "FROM cluster_members m JOIN devices d ON d.name = m.device "
                 "ORDER BY m.cluster, m.device"));
  std::vector<MemberDevice> out;
  for (const auto& r : rows)
    out.push_back({str(r["cluster"]), str(r["device"]), str(r["mstate"]), str(r["tier"]),
                   str(r["labels"]), str(r["facts"]),
                   r["status"].is_string() ? str(r["status"]) : std::string("unknown")});
  return out;
}

Result<std::vector<std::string>> ClusterStore::member_names() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT DISTINCT device FROM cluster_members ORDER BY device"));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(str(r["device"]));
  return out;
}

Result<std::optional<SqlRow>> ClusterStore::get(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT * FROM clusters WHERE name = ?", {name}));
  if (rows.empty()) return std::optional<SqlRow>{};
  return std::optional<SqlRow>{std::move(rows.front())};
}

Result<std::vector<SqlRow>> ClusterStore::rows() {
  return inv_.query("SELECT * FROM clusters ORDER BY name");
}

Result<std::vector<SqlRow>> ClusterStore::members(const std::string& name) {
  return inv_.query(
      "SELECT device, role, metrics_url, state FROM cluster_members WHERE cluster = ? ORDER BY "
      "rowid",
      {name});
}

Result<std::optional<std::string>> ClusterStore::other_cluster_of(const std::string& device,
                                                                  const std::string& except) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT cluster FROM cluster_members "
                                         "WHERE device = ? AND cluster <> ? ORDER BY cluster",
                                         {device, except}));
  if (rows.empty()) return std::optional<std::string>{};
  return std::optional<std::string>{str(rows.front()["cluster"])};
}

Result<void> ClusterStore::remove_members(const std::string& name,
                                          const std::vector<std::string>& devices) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    for (const auto& d : devices) {
      GEDGE_TRY(tx.exec("DELETE FROM cluster_members WHERE cluster = ? AND device = ?", {name, d}));
      GEDGE_TRY(tx.exec("DELETE FROM build_journal WHERE cluster = ? AND device = ?", {name, d}));
    }
    GEDGE_TRY(tx.exec("UPDATE clusters SET updated_at = ? WHERE name = ?", {now_rfc3339(), name}));
    return {};
  });
}

Result<void> ClusterStore::remove(const std::string& name) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(tx.exec("DELETE FROM build_journal WHERE cluster = ?", {name}));
    GEDGE_TRY(tx.exec("DELETE FROM cluster_members WHERE cluster = ?", {name}));
    GEDGE_TRY(tx.exec("DELETE FROM clusters WHERE name = ?", {name}));
    return {};
  });
}

Result<void> ClusterStore::put_kubernetes(const std::string& name, const std::string& kubeconfig,
                                          const std::string& context, const std::string& api_server,
                                          bool known) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    std::string now = now_rfc3339();
    if (!known)
      GEDGE_TRY(
          tx.exec("INSERT INTO clusters(name, kind, kubeconfig, context, api_server, state, "
                  "created_at, updated_at) VALUES (?, 'kubernetes', ?, ?, ?, 'registered', ?, ?)",
                  {name, kubeconfig, context, api_server, now, now}));
    else
      GEDGE_TRY(
          tx.exec("UPDATE clusters SET kubeconfig = ?, context = ?, api_server = ?, "
                  "updated_at = ? WHERE name = ?",
                  {kubeconfig, context, api_server, now, name}));
    return {};
  });
}

Result<std::vector<std::string>> ClusterStore::of_device(const std::string& device) {
  GEDGE_TRY_ASSIGN(
      auto rows, inv_.query("SELECT cluster FROM cluster_members WHERE device = ? ORDER BY cluster",
                            {device}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(str(r["cluster"]));
  return out;
}

Result<void> ClusterStore::begin_build(const BuildStart& b, const std::string& run_id) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    std::string now = now_rfc3339();
    int64_t monitoring = b.monitoring ? 1 : 0;
    GEDGE_TRY_ASSIGN(bool known, ClusterStore(tx).exists(b.name));
    if (!known)
      GEDGE_TRY(
          tx.exec("INSERT INTO clusters(name, kind, profile, server, registry, monitoring, state, "
                  "created_at, updated_at) VALUES (?, 'devices', ?, ?, ?, ?, 'building', ?, ?)",
                  {b.name, b.profile, b.server, b.registry, monitoring, now, now}));
    else
      GEDGE_TRY(
          tx.exec("UPDATE clusters SET state = 'building', registry = ?, monitoring = ?, "
                  "updated_at = ? WHERE name = ?",
                  {b.registry, monitoring, now, b.name}));
    GEDGE_TRY(tx.exec("UPDATE clusters SET prometheus = ? WHERE name = ?",
                      {b.prometheus.empty() ? SqlValue{nullptr} : SqlValue{b.prometheus}, b.name}));
    for (const auto& d : b.devices)
      GEDGE_TRY(tx.exec(
          "INSERT OR IGNORE INTO cluster_members(cluster, device, role, state) "
          "VALUES (?, ?, ?, 'pending')",
          {b.name, d, std::string(!b.server.empty() && b.server == d ? "server" : "member")}));
    JournalStore journal(tx);
    for (const auto& f : b.failed) {
      GEDGE_TRY(journal.append(b.name, run_id, {f.device, f.step, "failed", f.message}));
      GEDGE_TRY(
          tx.exec("UPDATE cluster_members SET state = 'failed' WHERE cluster = ? AND device = ?",
                  {b.name, f.device}));
    }
    return {};
  });
}

Result<std::string> ClusterStore::finish_build(
    const std::string& name, const std::string& run_id, const std::vector<MemberOutcome>& outcomes,
    const std::optional<std::pair<std::string, std::string>>& endpoint) {
  std::string cstate;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    JournalStore journal(tx);
    for (const auto& o : outcomes) {
      if (o.journal) GEDGE_TRY(journal.append(name, run_id, *o.journal));
      if (o.state == "ready")
        GEDGE_TRY(tx.exec(
            "UPDATE cluster_members SET state = 'ready', metrics_url = ? WHERE cluster = ? AND "
            "device = ?",
            {o.metrics_url.empty() ? SqlValue{nullptr} : SqlValue{o.metrics_url}, name, o.device}));
      else
        GEDGE_TRY(tx.exec("UPDATE cluster_members SET state = ? WHERE cluster = ? AND device = ?",
                          {o.state, name, o.device}));
    }
    GEDGE_TRY_ASSIGN(auto ms,
                     tx.query("SELECT state FROM cluster_members WHERE cluster = ?", {name}));
    std::size_t ready = 0;
    for (const auto& m : ms)
      if (m["state"] == "ready") ++ready;
    cstate = ready == ms.size() ? "ready" : (ready == 0 ? "failed" : "partial");
    GEDGE_TRY(tx.exec("UPDATE clusters SET state = ?, updated_at = ? WHERE name = ?",
                      {cstate, now_rfc3339(), name}));
    if (endpoint)
      GEDGE_TRY(tx.exec("UPDATE clusters SET kubeconfig = ?, api_server = ? WHERE name = ?",
                        {endpoint->first, endpoint->second, name}));
    return {};
  }));
  return cstate;
}

Result<void> JournalStore::append(const std::string& cluster, const std::string& run_id,
                                  const JournalLine& line) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(tx.exec(
        "INSERT INTO build_journal(cluster, run_id, device, step, status, message, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        {cluster, run_id, line.device, line.step, line.status, line.message, now_rfc3339()}));
    return {};
  });
}

Result<std::vector<SqlRow>> JournalStore::entries(const std::string& cluster) {
  return inv_.query(
      "SELECT id, device, run_id, step, status, message, at FROM build_journal "
      "WHERE cluster = ? ORDER BY id",
      {cluster});
}

}  // namespace gedge
