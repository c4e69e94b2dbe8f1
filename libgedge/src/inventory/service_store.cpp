// Table services: what `svc deploy` recorded.
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

}  // namespace gedge
