// Internal helpers shared by the cluster build and the other cluster verbs.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gedge/cluster.hpp"

namespace gedge::cluster::detail {

// A device row as the cluster code needs it.
struct DeviceRow {
  std::string name, host, user, identity, host_key_type, host_key_fp;
  int port = 22;
};

// usage unless NAME is 1-63 of [A-Za-z0-9._-] starting with a letter or digit.
Result<void> check_name(const std::string& what, const std::string& name);
// not_found when the device is not registered.
Result<DeviceRow> load_device(Inventory& inv, const std::string& name);
// The clusters row, or nullopt.
Result<std::optional<nlohmann::json>> load_cluster(Inventory& inv, const std::string& name);
// not_found when the cluster does not exist.
Result<nlohmann::json> require_cluster(Inventory& inv, const std::string& name);
// Members in join order (rowid).
Result<std::vector<nlohmann::json>> load_members(Inventory& inv, const std::string& name);
// The journal rows of a cluster (optionally one device).
Result<std::vector<JournalEntry>> load_journal(Inventory& inv, const std::string& cluster);
// conflict when a device is a member of a cluster other than `cluster`.
Result<void> check_not_elsewhere(Inventory& inv, const std::string& cluster,
                                 const std::vector<std::string>& devices);
// The metrics URL gedge records for a member with node-exporter.
std::string metrics_url_for(const DeviceRow& d);

}  // namespace gedge::cluster::detail
