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

}  // namespace gedge
