// Tables clusters and cluster_members.
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

}  // namespace gedge
