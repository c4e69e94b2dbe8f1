// Table rtts: round-trip times measured from one device to others (sched probe).
#include "gedge/report.hpp"
#include "gedge/stores.hpp"

namespace gedge {

Result<void> RttStore::record(const std::string& src,
                              const std::vector<std::pair<std::string, double>>& rtts) {
  return inv_.write([&](Inventory& tx) -> Result<void> {
    std::string now = now_rfc3339();
    for (const auto& [dst, ms] : rtts)
      GEDGE_TRY(
          tx.exec("INSERT INTO rtts (src, dst, ms, measured_at) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT(src, dst) DO UPDATE SET ms = excluded.ms, measured_at = "
                  "excluded.measured_at",
                  {src, dst, ms, now}));
    return {};
  });
}

Result<std::vector<Rtt>> RttStore::all() {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT src, dst, ms FROM rtts ORDER BY src, dst"));
  std::vector<Rtt> out;
  out.reserve(rows.size());
  for (const auto& r : rows)
    out.push_back(
        {r["src"].get<std::string>(), r["dst"].get<std::string>(), r["ms"].get<double>()});
  return out;
}

}  // namespace gedge
