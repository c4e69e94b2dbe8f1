// Table pins: what gedge pinned where.
#include "gedge/report.hpp"
#include "gedge/stores.hpp"

namespace gedge {

namespace {

// Rows of (device, owner, cpuset, mems) as pins; a NULL mems is empty.
std::vector<Pin> pins_from(const std::vector<SqlRow>& rows) {
  std::vector<Pin> out;
  for (const auto& r : rows)
    out.push_back({r["device"].get<std::string>(), r["owner"].get<std::string>(),
                   r["cpuset"].get<std::string>(),
                   r["mems"].is_string() ? r["mems"].get<std::string>() : std::string()});
  return out;
}

}  // namespace

Result<std::vector<Pin>> PinStore::on_device(const std::string& device) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT device, owner, cpuset, mems FROM pins WHERE device = ? "
                              "ORDER BY owner",
                              {device}));
  return pins_from(rows);
}

Result<std::vector<Pin>> PinStore::on_cluster(const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT p.device, p.owner, p.cpuset, p.mems FROM pins p "
                                         "JOIN cluster_members m ON m.device = p.device "
                                         "WHERE m.cluster = ? ORDER BY p.device, p.owner",
                                         {cluster}));
  return pins_from(rows);
}

Result<void> PinStore::put(const Pin& pin) {
  SqlValue mems = pin.mems.empty() ? SqlValue(nullptr) : SqlValue(pin.mems);
  return inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(
        tx.exec("INSERT INTO pins (device, owner, cpuset, mems, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (device, owner) DO UPDATE SET cpuset = excluded.cpuset, "
                "mems = COALESCE(excluded.mems, mems), created_at = excluded.created_at",
                {pin.device, pin.owner, pin.cpuset, mems, now_rfc3339()}));
    return {};
  });
}

Result<bool> PinStore::remove(const std::string& device, const std::string& owner) {
  int64_t n = 0;
  GEDGE_TRY(inv_.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY_ASSIGN(n,
                     tx.exec("DELETE FROM pins WHERE device = ? AND owner = ?", {device, owner}));
    return {};
  }));
  return n > 0;
}

}  // namespace gedge
