// The podman client of the container-host back end: one SSH session per device, every command
// an argv run with `sudo -n` (quoted by the SSH layer); nothing is built as a shell string.
#include <fmt/format.h>

#include <cstring>

#include "gedge/stores.hpp"
#include "hosts_internal.hpp"

namespace gedge::svc::detail::hosts {

Result<Device*> Fleet::get(const std::string& name) {
  auto it = devs_.find(name);
  if (it != devs_.end()) return &it->second;
  Device d;
  d.name = name;
  GEDGE_TRY_ASSIGN(d.target, device_target(inv_, paths_, name));
  GEDGE_TRY_ASSIGN(auto facts, DeviceStore(inv_).facts(name));
  if (facts) d.facts = json::parse(*facts, nullptr, false);
  auto opts = default_ssh_options(paths_, timeout_s_);
  opts.connect_timeout_s = timeout_s_;
  opts.deadline =
      Clock::now() + std::chrono::hours(6);  // long deploys; each wait has its own bound
  auto s = SshSession::connect(d.target, opts);
  if (!s)
    d.down = s.error();
  else
    d.session = std::move(*s);
  return &devs_.emplace(name, std::move(d)).first->second;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The non-empty lines of a command's output.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string line =
        trim(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (!line.empty()) out.push_back(line);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

std::string last_lines(const std::string& text, int n) {
  std::string t = trim(text);
  std::size_t pos = t.size();
  for (int i = 0; i < n && pos != std::string::npos && pos > 0; ++i) pos = t.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? t : t.substr(pos + 1);
}

Result<ExecResult> podman(Device& d, std::vector<std::string> args) {
  if (d.down) return std::unexpected(*d.down);
  args.insert(args.begin(), "podman");
  auto r = d.session->exec(args, std::nullopt, true);
  if (r && r->exit_code != 0 && r->err.find("sudo:") != std::string::npos)
    return fail(
        ErrorCode::auth, fmt::format("device {}: sudo refused: {}", d.name, trim(r->err)),
        "gedge needs passwordless sudo on container hosts (the containers profile sets it up)");
  return r;
}

// podman failed: a message naming the device and the command's last stderr lines.
Error podman_error(const Device& d, const std::string& what, const ExecResult& r) {
  std::string err = last_lines(r.err.empty() ? r.out : r.err, 3);
  return Error{ErrorCode::failure, fmt::format("device {}: {}: {}", d.name, what, err), ""};
}

// Reads every gedge-managed container on the device.
Result<void> refresh(Device& d) {
  GEDGE_TRY_ASSIGN(
      auto r, podman(d, {"ps", "-a", "--filter", "label=gedge.managed=true", "--format", "json"}));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "listing containers", r));
  auto j = json::parse(r.out.empty() ? "[]" : r.out, nullptr, false);
  if (!j.is_array())
    return fail(ErrorCode::failure,
                fmt::format("device {}: 'podman ps --format json' printed something else", d.name));
  d.managed.clear();
  for (const auto& c : j) {
    Ctr x;
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty())
      x.name = c["Names"][0].get<std::string>();
    json labels = c.value("Labels", json::object());
    if (!labels.is_object()) labels = json::object();
    x.service = labels.value("gedge.service", "");
    x.hash = labels.value("gedge.spec", "");
    try {
      x.replica = std::stoi(labels.value("gedge.replica", "-1"));
    } catch (...) {
      x.replica = -1;
    }
    x.state = c.value("State", "");
    x.image = c.value("Image", "");
    if (c.contains("Ports") && c["Ports"].is_array()) x.ports = c["Ports"];
    d.managed.push_back(x);
  }
  return {};
}

// Containers of replica `r` of service `svc` on the device (canonical names, not the -old ones).
std::vector<Ctr> replica_ctrs(const Device& d, const std::string& svc, int r, bool old) {
  std::vector<Ctr> out;
  for (const auto& c : d.managed) {
    bool is_old =
        c.name.size() > std::strlen(kOldSuffix) &&
        c.name.compare(c.name.size() - std::strlen(kOldSuffix), std::string::npos, kOldSuffix) == 0;
    if (c.service == svc && c.replica == r && is_old == old) out.push_back(c);
  }
  return out;
}

Result<void> remove_ctrs(Device& d, const std::vector<std::string>& names) {
  if (names.empty()) return {};
  std::vector<std::string> args{"rm", "-f", "-t", "10"};
  args.insert(args.end(), names.begin(), names.end());
  GEDGE_TRY_ASSIGN(auto r, podman(d, args));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "removing containers", r));
  return {};
}

// The cpuset for a pinned replica: `cores` CPUs of the device not pinned to anything else,

}  // namespace gedge::svc::detail::hosts
