// The device registry's shared parts: a devices row as the public device object, loading a
// registered device as an SSH target, and the known_hosts helpers. Add: device_add.cpp and
// device_add_trust.cpp; ls and show: device_list.cpp; rm and rekey: device_rm.cpp.
#include "gedge/device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "device_detail.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

namespace detail {

nlohmann::json parse_json_text(const nlohmann::json& v, nlohmann::json fallback) {
  if (!v.is_string()) return fallback;
  auto j = nlohmann::json::parse(v.get<std::string>(), nullptr, false);
  return j.is_discarded() ? fallback : j;
}

// The public `facts` object from the stored facts text: the well-known facts first (null or []
// when missing), then whatever else the facts script reported.
nlohmann::json facts_object(nlohmann::json facts) {
  if (!facts.is_object()) facts = nlohmann::json::object();
  auto fact = [&facts](const char* k, nlohmann::json fallback) {
    auto it = facts.find(k);
    if (it == facts.end()) return fallback;
    nlohmann::json v = std::move(*it);
    facts.erase(it);
    return v;
  };
  nlohmann::json f = nlohmann::json::object();
  f.emplace("arch", fact("arch", nullptr));
  f.emplace("os", fact("os", nullptr));
  f.emplace("kernel", fact("kernel", nullptr));
  f.emplace("cpus", fact("cpus", nullptr));
  f.emplace("memory_bytes", fact("memory_bytes", nullptr));
  f.emplace("disk_free_bytes", fact("disk_free_bytes", nullptr));
  f.emplace("gpus", fact("gpus", nlohmann::json::array()));
  f.emplace("container_runtime", fact("container_runtime", nullptr));
  for (auto it = facts.begin(); it != facts.end(); ++it) f.emplace(it.key(), std::move(it.value()));
  return f;
}

// One hop of the public `proxy_jump` object (no identity or public key).
static nlohmann::json hop_object(const nlohmann::json& j) {
  nlohmann::json k = j.contains("host_key") && j["host_key"].is_object() ? j["host_key"]
                                                                         : nlohmann::json::object();
  return {
      {"host", j.value("host", "")},
      {"port", j.value("port", 22)},
      {"user", j.value("user", "")},
      {"host_key", {{"type", k.value("type", "")}, {"fingerprint", k.value("fingerprint", "")}}}};
}

// The public `proxy_jump` object from the stored JSON, null if none: the hop that reaches the
// device, and in "via" the hops before it, outermost first (empty for one hop).
nlohmann::json jump_object(nlohmann::json j) {
  if (!j.is_object()) return nullptr;
  auto out = hop_object(j);
  out["via"] = nlohmann::json::array();
  if (j.contains("via") && j["via"].is_array())
    for (const auto& h : j["via"])
      if (h.is_object()) out["via"].push_back(hop_object(h));
  return out;
}

nlohmann::json device_json(SqlRow&& r) {
  // Built by moving the row's values into place (no copies): `device ls` builds this for every
  // registered device, 10 000 of them in a large fleet.
  auto take = [&r](const char* column) -> nlohmann::json {
    auto it = r.find(column);
    return it == r.end() ? nlohmann::json() : std::move(*it);
  };
  nlohmann::json d = nlohmann::json::object();
  d.emplace("name", take("name"));
  d.emplace("host", take("host"));
  d.emplace("port", take("port"));
  d.emplace("user", take("user"));
  d.emplace("identity", take("identity"));
  d.emplace("alias", take("alias"));
  d.emplace("certificate", take("certificate"));
  d.emplace("identity_agent", take("identity_agent"));
  d.emplace("auth", take("auth"));
  d.emplace("proxy_jump", jump_object(parse_json_text(take("proxy_jump"), nullptr)));
  d.emplace("tier", take("tier"));
  d.emplace("site", take("site"));
  d.emplace("labels", parse_json_text(take("labels"), nlohmann::json::object()));
  d.emplace("groups", parse_json_text(take("groups"), nlohmann::json::array()));
  d.emplace("status", take("status"));
  d.emplace("last_seen", take("last_seen"));
  d.emplace("rtt_ms", take("rtt_ms"));
  d.emplace("host_key",
            nlohmann::json{{"type", take("host_key_type")}, {"fingerprint", take("host_key_fp")}});
  d.emplace("facts", facts_object(parse_json_text(take("facts"), nlohmann::json::object())));
  return d;
}

nlohmann::json device_json(const SqlRow& r) {
  return device_json(SqlRow(r));
}

Result<SqlRow> load_device(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto row, DeviceStore(inv).row(std::string(name)));
  if (!row)
    return fail(ErrorCode::not_found, fmt::format("device '{}' not found", name),
                "list registered devices with 'gedge device ls'");
  return std::move(*row);
}

SshTarget target_of(const SqlRow& r) {
  SshTarget t;
  t.name = r.value("name", "");
  t.host = r.value("host", "");
  t.port = r["port"].is_number() ? r["port"].get<int>() : 0;
  t.user = r.value("user", "");
  t.identity = r["identity"].is_string() ? r["identity"].get<std::string>() : "";
  t.host_key.type = r["host_key_type"].is_string() ? r["host_key_type"].get<std::string>() : "";
  t.host_key.fingerprint = r["host_key_fp"].is_string() ? r["host_key_fp"].get<std::string>() : "";
  auto str = [&](const char* k) {
    return r.contains(k) && r[k].is_string() ? r[k].get<std::string>() : std::string();
  };
  t.certificate = str("certificate");
  t.identity_agent = str("identity_agent");
  t.auth = str("auth");
  if (auto j = parse_json_text(r.value("proxy_jump", nlohmann::json()), nullptr); j.is_object()) {
    auto hop = [](const nlohmann::json& h) {
      JumpHost jh;
      jh.host = h.value("host", "");
      jh.port = h.value("port", 22);
      jh.user = h.value("user", "");
      jh.identity = h.value("identity", "");
      if (h.contains("host_key") && h["host_key"].is_object()) {
        jh.host_key.type = h["host_key"].value("type", "");
        jh.host_key.fingerprint = h["host_key"].value("fingerprint", "");
        jh.host_key.public_key = h["host_key"].value("public_key", "");
      }
      return jh;
    };
    std::vector<JumpHost> hops;
    if (j.contains("via") && j["via"].is_array())
      for (const auto& h : j["via"])
        if (h.is_object()) hops.push_back(hop(h));
    hops.push_back(hop(j));
    t.jump = jump_chain(std::move(hops), t.name);
  }
  return t;
}

std::string jump_alias(std::string_view device) {
  return std::string(device) + "/jump";
}

std::string jump_alias(std::string_view device, std::size_t index, std::size_t count) {
  if (index + 1 >= count) return jump_alias(device);
  return fmt::format("{}/jump-{}", device, index + 1);
}

JumpHost jump_chain(std::vector<JumpHost> hops, std::string_view device) {
  for (std::size_t i = 0; i < hops.size(); ++i) {
    hops[i].alias = jump_alias(device, i, hops.size());
    hops[i].via.clear();
  }
  JumpHost last = std::move(hops.back());
  hops.pop_back();
  last.via = std::move(hops);
  return last;
}

std::string chain_key(const std::optional<JumpHost>& jump) {
  if (!jump) return {};
  std::string out;
  for (const auto& h : jump_hops(*jump))
    out += fmt::format("{}{}:{}", out.empty() ? "" : ",", h.host, h.port > 0 ? h.port : 22);
  return out;
}

std::string chain_key_of(const nlohmann::json& column) {
  auto j = parse_json_text(column, nullptr);
  if (!j.is_object()) return {};
  std::string out;
  auto add = [&](const nlohmann::json& h) {
    out += fmt::format("{}{}:{}", out.empty() ? "" : ",", h.value("host", ""), h.value("port", 22));
  };
  if (j.contains("via") && j["via"].is_array())
    for (const auto& h : j["via"])
      if (h.is_object()) add(h);
  add(j);
  return out;
}

nlohmann::json jump_record(const JumpHost& jump) {
  auto hop = [](const JumpHost& h) {
    return nlohmann::json{{"host", h.host},
                          {"port", h.port},
                          {"user", h.user},
                          {"identity", h.identity},
                          {"host_key",
                           {{"type", h.host_key.type},
                            {"fingerprint", h.host_key.fingerprint},
                            {"public_key", h.host_key.public_key}}}};
  };
  auto out = hop(jump);
  if (!jump.via.empty()) {
    out["via"] = nlohmann::json::array();
    for (const auto& h : jump.via) out["via"].push_back(hop(h));
  }
  return out;
}

std::string legacy_marker(const std::string& host, int port) {
  return (port == 0 || port == 22) ? host : fmt::format("[{}]:{}", host, port);
}

std::string random_token() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char c : buf) out += fmt::format("{:02x}", c);
  return out;
}

// Lines older gedge versions keyed by [host]:port are shared by every device at their address:
// one is removed only when no device is registered there any more (current lines are keyed by
// each device's HostKeyAlias).
Result<void> release_known_host(Inventory& inv, const Paths& paths, const SshTarget& at) {
  int port = at.port ? at.port : 22;
  GEDGE_TRY_ASSIGN(auto left, DeviceStore(inv).at_address(at.host, port));
  if (!left.empty()) return {};
  return known_hosts_update(paths.known_hosts, legacy_marker(at.host, port), "");
}

}  // namespace detail

using namespace detail;

Result<SshTarget> device_target(Inventory& inv, const Paths& paths, std::string_view name) {
  (void)paths;
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  return target_of(row);
}

}  // namespace gedge
