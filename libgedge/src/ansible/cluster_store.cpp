// Cluster rows, members and the build journal, read through the inventory's typed stores.
#include <fmt/format.h>

#include "cluster_detail.hpp"
#include "gedge/stores.hpp"

namespace gedge::cluster::detail {

Result<void> check_name(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      ok = false;
  if (!ok)
    return fail(
        ErrorCode::usage,
        fmt::format("invalid {} name '{}': use 1-63 letters, digits, '.', '_' or '-'", what, name));
  return {};
}

Result<DeviceRow> load_device(Inventory& inv, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto row, DeviceStore(inv).row(name));
  if (!row)
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", name),
                "gedge device ls");
  const auto& r = *row;
  auto s = [&](const char* k) {
    return r[k].is_string() ? r[k].get<std::string>() : std::string();
  };
  DeviceRow d{s("name"),
              s("host"),
              s("user"),
              s("identity"),
              s("host_key_type"),
              s("host_key_fp"),
              r["port"].is_number() ? r["port"].get<int>() : 22,
              {}};
  GEDGE_TRY_ASSIGN(d.target, device_target(inv, Paths{}, name));
  return d;
}

Result<std::optional<nlohmann::json>> load_cluster(Inventory& inv, const std::string& name) {
  return ClusterStore(inv).get(name);
}

Result<nlohmann::json> require_cluster(Inventory& inv, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto c, load_cluster(inv, name));
  if (!c)
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", name),
                "gedge cluster ls");
  return *c;
}

Result<std::vector<nlohmann::json>> load_members(Inventory& inv, const std::string& name) {
  return ClusterStore(inv).members(name);
}

Result<std::vector<JournalEntry>> load_journal(Inventory& inv, const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto rows, JournalStore(inv).entries(cluster));
  std::vector<JournalEntry> out;
  for (const auto& r : rows)
    out.push_back({r["id"].get<int64_t>(), r["device"].get<std::string>(),
                   r["run_id"].get<std::string>(), r["step"].get<std::string>(),
                   r["status"].get<std::string>()});
  return out;
}

Result<void> check_not_elsewhere(Inventory& inv, const std::string& cluster,
                                 const std::vector<std::string>& devices) {
  for (const auto& d : devices) {
    GEDGE_TRY_ASSIGN(auto elsewhere, ClusterStore(inv).other_cluster_of(d, cluster));
    if (elsewhere) {
      const std::string& other = *elsewhere;
      return fail(ErrorCode::conflict,
                  fmt::format("device '{}' is already a member of cluster '{}'", d, other),
                  fmt::format("gedge cluster leave {} {}", other, d));
    }
  }
  return {};
}

std::string metrics_url_for(const DeviceRow& d) {
  bool v6 = d.host.find(':') != std::string::npos;
  return fmt::format("http://{}:9100/metrics", v6 ? "[" + d.host + "]" : d.host);
}

}  // namespace gedge::cluster::detail
