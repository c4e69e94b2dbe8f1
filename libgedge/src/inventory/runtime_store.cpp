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

}  // namespace gedge
