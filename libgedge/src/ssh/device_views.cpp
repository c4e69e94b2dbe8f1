// What the cli's device verbs show: result objects, table columns and footers (gedge/device.hpp).
#include "gedge/device_views.hpp"

#include <fmt/format.h>

namespace gedge {

nlohmann::json device_add_json(const DeviceAddResult& res) {
  nlohmann::json j = res.device;
  j["changed"] = res.changed;
  j["bootstrapped"] = res.bootstrapped;
  j["token_issued"] = res.token_issued;
  return j;
}

std::string device_add_summary(const DeviceAddResult& res, const std::string& name) {
  return res.changed ? fmt::format("device '{}' registered", name)
                     : fmt::format("device '{}' is already registered; nothing changed", name);
}

void add_labels_text(nlohmann::json& devices) {
  for (auto& d : devices) {
    std::string t;
    const auto& labels = d["labels"];
    if (labels.is_object())  // a stored value that is not an object (hand-edited) shows none
      for (auto it = labels.begin(); it != labels.end(); ++it)
        t += (t.empty() ? "" : ",") + it.key() + "=" +
             (it.value().is_string() ? it.value().get<std::string>() : "");
    d["labels_text"] = t;
  }
}

std::string fan_out_summary(const nlohmann::json& report) {
  const auto& s = report["summary"];
  return fmt::format("{} ok, {} failed, {} unreachable", s["ok"].get<int>(), s["failed"].get<int>(),
                     s["unreachable"].get<int>());
}

void add_rtt_text(nlohmann::json& report) {
  for (auto& r : report["results"]) {
    const auto& v = r["rtt_ms"];
    r["rtt_text"] = v.is_number() ? fmt::format("{:.2f}", v.get<double>()) : "-";
  }
}

std::vector<std::string> exec_device_names(std::vector<std::string> positional,
                                           const std::vector<std::string>& command) {
  if (positional.size() >= command.size() &&
      std::equal(command.begin(), command.end(),
                 positional.end() - static_cast<long>(command.size())))
    positional.resize(positional.size() - command.size());
  return positional;
}

std::string exec_text(const nlohmann::json& report) {
  std::string out;
  for (const auto& r : report["results"]) {
    std::string head = r["exit_code"].is_number()
                           ? fmt::format("exit {}", r["exit_code"].get<int>())
                           : r["status"].get<std::string>();
    out += fmt::format("=== {} ({}, {} ms)\n", r["device"].get<std::string>(), head,
                       r["duration_ms"].dump());
    out += r["stdout"].get<std::string>();
    if (!out.empty() && out.back() != '\n') out += '\n';
    std::string err = r["stderr"].get<std::string>();
    if (err.empty() && r["exit_code"].is_null()) err = r.value("message", "");
    for (size_t p = 0; p < err.size();) {
      size_t nl = err.find('\n', p);
      out +=
          "stderr: " + err.substr(p, nl == std::string::npos ? std::string::npos : nl - p) + "\n";
      p = nl == std::string::npos ? err.size() : nl + 1;
    }
  }
  return out + fan_out_summary(report) + "\n";
}

nlohmann::json rekey_json(const RekeyPlan& plan) {
  return {{"device", plan.name},
          {"old", {{"type", plan.old_key.type}, {"fingerprint", plan.old_key.fingerprint}}},
          {"new", {{"type", plan.new_key.type}, {"fingerprint", plan.new_key.fingerprint}}},
          {"changed", plan.changed}};
}

Result<void> rekey_expect(const RekeyPlan& plan, const std::string& expect) {
  if (expect.empty() || expect == plan.new_key.fingerprint) return {};
  return fail(ErrorCode::host_key,
              fmt::format("device '{}' presents {} {}, not the expected {}", plan.name,
                          plan.new_key.type, plan.new_key.fingerprint, expect));
}

}  // namespace gedge
