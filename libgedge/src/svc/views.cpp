// The table rows the cli shows for svc results (the JSON output is the result itself): one row
// per replica action, per replica, per removal, with the columns a table needs.
#include <fmt/format.h>

#include "gedge/svc.hpp"

namespace gedge::svc {

using nlohmann::json;

json deploy_rows(const json& result) {
  json rows = json::array();
  for (const auto& s : result.value("services", json::array()))
    for (const auto& a : s.value("actions", json::array()))
      rows.push_back({{"service", s["name"]},
                      {"replica", a.contains("replica") ? json(a["replica"]) : json("-")},
                      {"target", a.value("device", s.value("namespace", ""))},
                      {"action", a["action"]},
                      {"state", a.value("state", "")},
                      {"error", a.value("error", "")}});
  for (const auto& s : result.value("services", json::array()))
    for (const auto& o : s.value("objects", json::array()))
      rows.push_back({{"service", s["name"]},
                      {"replica", "-"},
                      {"target", o.value("kind", "") + "/" + o.value("name", "")},
                      {"action", o["action"]},
                      {"state", s.value("state", "")},
                      {"error", ""}});
  return rows;
}

std::string deploy_summary(const json& result) {
  std::string out;
  for (const auto& s : result.value("services", json::array()))
    out += fmt::format("{}{}: {} ({} replicas{})", out.empty() ? "" : "\n", s.value("name", ""),
                       s.value("state", ""), s.value("replicas", 0),
                       result.value("dry_run", false) ? ", dry run: nothing changed" : "");
  return out;
}

json status_rows(const json& result) {
  json rows = result.value("replicas", json::array());
  for (auto& r : rows) {
    r["where"] = r.contains("device") ? r["device"] : r.value("node", json(""));
    r["what"] = r.contains("container") ? r["container"] : r.value("pod", json(""));
  }
  return rows;
}

std::string status_summary(const json& result) {
  return fmt::format("{}: {} of {} ready ({})", result.value("name", ""), result.value("ready", 0),
                     result.value("desired", 0), result.value("state", ""));
}

json removed_rows(const json& result) {
  json rows = result.value("removed", json::array());
  for (auto& r : rows) {
    json what = r.value("containers", json::array());
    if (what.empty() && r.contains("kind"))
      what = r["kind"].get<std::string>() + "/" + r.value("name", "");
    r["what"] = what;
    r["where"] = r.value("device", r.value("namespace", ""));
  }
  return rows;
}

void set_replica(LogsRequest& req, const std::string& text) {
  if (text.empty()) return;
  req.pod = text;
  if (text.find_first_not_of("0123456789") == std::string::npos && text.size() < 9)
    req.replica = std::stoi(text);
}

}  // namespace gedge::svc
