// sched probe's measurement: from one device, over gedge's verified SSH, a TCP connect plus SSH
// banner round trip (min of 3) to each target's sshd. It crosses proxies and userspace delays
// like the real traffic does. Recording the RTTs is the caller's (sched::record_rtts).
#include <fmt/format.h>

#include <cmath>

#include "gedge/device.hpp"
#include "gedge/inventory.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

namespace {

// Runs on the device (python3); targets arrive as argv NAME=HOST:PORT, never in the script text.
constexpr const char* kProbeScript = R"(import json, socket, sys, time
out = {}
for arg in sys.argv[1:]:
    name, hostport = arg.split("=", 1)
    host, port = hostport.rsplit(":", 1)
    host = host[1:-1] if host.startswith("[") else host
    best = None
    for _ in range(3):
        t = time.monotonic()
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.settimeout(5)
            s.recv(64)
            s.close()
            d = (time.monotonic() - t) * 1000.0
            best = d if best is None else min(best, d)
        except OSError:
            pass
    out[name] = best
print(json.dumps(out))
)";

}  // namespace

Result<ProbeReport> device_probe(Inventory& inv, const Paths& paths, const std::string& from,
                                 std::vector<std::string> to, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto src, device_target(inv, paths, from));
  if (to.empty()) {
    GEDGE_TRY_ASSIGN(auto members, ClusterStore(inv).member_names());
    for (auto& m : members)
      if (m != from) to.push_back(std::move(m));
  }
  if (to.empty())
    return fail(ErrorCode::usage, "nothing to probe",
                "pass --to DEVICE or add devices to a cluster");
  std::vector<std::string> argv = {"python3", "-c", kProbeScript};
  for (const auto& n : to) {
    GEDGE_TRY_ASSIGN(auto t, device_target(inv, paths, n));
    bool v6 = t.host.find(':') != std::string::npos;
    argv.push_back(fmt::format("{}={}:{}", n, v6 ? "[" + t.host + "]" : t.host, t.port));
  }
  GEDGE_TRY_ASSIGN(auto session, SshSession::connect(src, default_ssh_options(paths, timeout_s)));
  GEDGE_TRY_ASSIGN(auto res, session->exec(argv));
  if (res.exit_code != 0)
    return fail(ErrorCode::failure,
                fmt::format("probe on '{}' failed: {}", from, res.err.substr(0, 400)),
                "the device needs python3");
  nlohmann::json measured;
  try {
    measured = nlohmann::json::parse(res.out);
  } catch (...) {
    return fail(ErrorCode::failure, fmt::format("probe on '{}' printed no JSON", from));
  }
  ProbeReport out;
  out.from = from;
  out.rows = nlohmann::json::array();
  for (const auto& n : to) {
    nlohmann::json v =
        measured.is_object() ? measured.value(n, nlohmann::json()) : nlohmann::json();
    if (v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0)
      out.rtts.emplace_back(n, v.get<double>());
    else
      out.unreachable.push_back(n);
    out.rows.push_back(
        {{"from", from},
         {"to", n},
         {"rtt_ms", v.is_number() ? nlohmann::json(std::round(v.get<double>() * 1000) / 1000)
                                  : nlohmann::json()}});
  }
  return out;
}

}  // namespace gedge
