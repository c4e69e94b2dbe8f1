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

Result<std::vector<ServiceRecord>> ServiceStore::all() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT name, cluster, spec, placement, state FROM services"));
  std::vector<ServiceRecord> out;
  for (const auto& r : rows) {
    ServiceRecord s{r["name"].get<std::string>(), r["cluster"].get<std::string>(),
                    r["spec"].get<std::string>(), std::nullopt,
                    r["state"].is_string() ? r["state"].get<std::string>() : std::string()};
    if (r["placement"].is_string()) s.placement = r["placement"].get<std::string>();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace gedge
