// Table devices, as seen from outside the ssh module.
#include <fmt/format.h>

#include "gedge/stores.hpp"

namespace gedge {

namespace {

std::string text(const SqlRow& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

Result<std::string> DeviceStore::topology_xml(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT topology_xml FROM devices WHERE name = ?", {name}));
  if (rows.empty())
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", name),
                "see 'gedge device ls'");
  const auto& xml = rows.front()["topology_xml"];
  return xml.is_string() ? xml.get<std::string>() : std::string();
}

Result<std::vector<Completion>> DeviceStore::completions() {
  GEDGE_TRY_ASSIGN(auto rows,
                   inv_.query("SELECT name, host || ' ' || COALESCE(status, '') AS d FROM devices "
                              "ORDER BY name"));
  std::vector<Completion> out;
  for (const auto& r : rows) out.push_back({text(r["name"]), text(r["d"])});
  return out;
}

Result<std::vector<std::string>> DeviceStore::names() {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT name FROM devices ORDER BY name"));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(r["name"].get<std::string>());
  return out;
}

Result<std::optional<std::string>> DeviceStore::facts(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT facts FROM devices WHERE name = ?", {name}));
  if (rows.empty() || !rows.front()["facts"].is_string()) return std::optional<std::string>{};
  return std::optional<std::string>{rows.front()["facts"].get<std::string>()};
}

Result<std::optional<SqlRow>> DeviceStore::row(const std::string& name) {
  GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT * FROM devices WHERE name = ?", {name}));
  if (rows.empty()) return std::optional<SqlRow>{};
  return std::optional<SqlRow>{std::move(rows.front())};
}

}  // namespace gedge
