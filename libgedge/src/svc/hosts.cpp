// The container-host back end: podman over SSH on the cluster's members. Every remote command is
// an argv (quoted by the SSH layer), run with `sudo -n`; nothing is built as a shell string.
//
// Per service: read what runs (containers labelled gedge.service=<name>), assign each replica a
// device (where it already runs, else --placement, else the least loaded member), pull the
// images (all of them, for every service, before anything changes), then converge replica by
// replica: create, start, replace (old renamed and stopped, new started, old removed once the new
// one runs and answers; on failure or Ctrl-C the old one is restored), remove extras.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "deploy_internal.hpp"
#include "gedge/runtime.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"
#include "gedge/topo.hpp"

namespace gedge::svc::detail {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kOldSuffix = "-gedge-old";

struct Ctr {
  std::string name;
  std::string service;
  int replica = -1;
  std::string hash;
  std::string state;  // running | exited | created | ...
  std::string image;
  json ports = json::array();  // podman's [{host_port, container_port, protocol}]
};

struct Device {
  std::string name;
  SshTarget target;
  std::unique_ptr<SshSession> session;
  std::optional<Error> down;  // could not connect
  std::vector<Ctr> managed;   // every gedge-managed container on it
  json facts;
  int assigned = 0;  // replicas given to it in this run
};

// One connection per device for the whole run.
class Fleet {
 public:
  Fleet(Inventory& inv, const Paths& paths, double timeout_s)
      : inv_(inv), paths_(paths), timeout_s_(timeout_s) {}

  Result<Device*> get(const std::string& name) {
    auto it = devs_.find(name);
    if (it != devs_.end()) return &it->second;
    Device d;
    d.name = name;
    GEDGE_TRY_ASSIGN(d.target, device_target(inv_, paths_, name));
    GEDGE_TRY_ASSIGN(auto rows, inv_.query("SELECT facts FROM devices WHERE name = ?", {name}));
    if (!rows.empty() && rows[0]["facts"].is_string())
      d.facts = json::parse(rows[0]["facts"].get<std::string>(), nullptr, false);
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

 private:
  Inventory& inv_;
  const Paths& paths_;
  double timeout_s_;
  std::map<std::string, Device> devs_;
};

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
std::vector<Ctr> replica_ctrs(const Device& d, const std::string& svc, int r, bool old = false) {
  std::vector<Ctr> out;
  for (const auto& c : d.managed) {
    bool is_old =
        c.name.size() > std::strlen(kOldSuffix) &&
        c.name.compare(c.name.size() - std::strlen(kOldSuffix), std::string::npos, kOldSuffix) == 0;
    if (c.service == svc && c.replica == r && is_old == old) out.push_back(c);
  }
  return out;
}

bool has_tcp_ports(const Service& s) {
  if (!s.service_ports.empty()) return true;
  for (const auto& c : s.containers)
    for (const auto& p : c.ports)
      if (p.protocol == "TCP") return true;
  return false;
}

std::vector<int> tcp_host_ports(const Service& s) {
  std::vector<int> out(s.service_ports.begin(), s.service_ports.end());
  for (const auto& c : s.containers)
    for (const auto& p : c.ports)
      if (p.protocol == "TCP") out.push_back(p.external_port);
  return out;
}

// One TCP connect with a short timeout (the host's address, from this machine).
bool port_answers(const std::string& host, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return false;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 1000) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
  }
  ::close(fd);
  return ok;
}

Result<std::string> container_state(Device& d, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto r,
                   podman(d, {"container", "inspect", "--format", "{{.State.Status}}", name}));
  if (r.exit_code != 0) return std::string("missing");
  return trim(r.out);
}

// Waits until every container runs (and still runs a second later) and every TCP host port
// answers from here. failure with the container's last log lines when it exits.
Result<void> wait_up(Device& d, const std::vector<std::string>& names,
                     const std::vector<int>& ports, Clock::time_point deadline) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& n : names) {
      for (;;) {
        if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
        GEDGE_TRY_ASSIGN(auto st, container_state(d, n));
        if (st == "running") break;
        if (st == "exited" || st == "stopped" || st == "missing" || Clock::now() > deadline) {
          auto lg = podman(d, {"logs", "--tail", "5", n});
          std::string tail = lg && lg->exit_code == 0 ? last_lines(lg->out + lg->err, 5) : "";
          return fail(ErrorCode::failure,
                      fmt::format("device {}: container {} is {}{}{}", d.name, n,
                                  Clock::now() > deadline && st != "exited"
                                      ? "not running before the timeout (" + st + ")"
                                      : st,
                                  tail.empty() ? "" : "; last log lines: ", tail),
                      "see 'gedge svc logs' for the whole log");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
    }
    if (pass == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // crash right after start?
  }
  for (int p : ports) {
    while (!port_answers(d.target.host, p)) {
      if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
      if (Clock::now() > deadline)
        return fail(
            ErrorCode::failure,
            fmt::format("device {}: port {} does not answer ({}:{})", d.name, p, d.target.host, p),
            "the container runs but nothing listens on the port: check its command and ports");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  return {};
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
// highest first (CPU 0 stays with the system). conflict when the device has too few.
Result<std::string> plan_cpuset(Inventory& inv, const Device& d, const std::string& owner,
                                int cores) {
  int cpus = d.facts.is_object() && d.facts.contains("cpus") && d.facts["cpus"].is_number()
                 ? d.facts["cpus"].get<int>()
                 : 1;
  GEDGE_TRY_ASSIGN(auto pins, PinStore(inv).on_device(d.name));
  topo::IndexSet used;
  for (const auto& pin : pins) {
    if (pin.owner == owner) return pin.cpuset;
    // Pins come from gedge (svc deploy, tune pin): Linux lists. One that does not parse pins
    // nothing.
    if (auto set = topo::parse_list(pin.cpuset)) used.insert(set->begin(), set->end());
  }
  topo::IndexSet pick;
  for (int c = cpus - 1; c >= 0 && static_cast<int>(pick.size()) < cores; --c)
    if (!used.count(static_cast<unsigned>(c))) pick.insert(static_cast<unsigned>(c));
  if (static_cast<int>(pick.size()) < cores)
    return fail(ErrorCode::conflict,
                fmt::format("device {}: pin needs {} free cores, {} of {} are free", d.name, cores,
                            pick.size(), cpus),
                "lower pin.cores, or remove services pinned there");
  return topo::format_list(pick);
}

struct Action {
  int replica = 0;
  std::string device;
  std::string action;  // create | start | replace | unchanged | remove | move
  std::string from;    // move: the device it leaves
  bool from_placement = false;
};

struct Plan {
  Unit* unit = nullptr;
  std::string hash;
  json host_plan;  // render_host_plan
  std::vector<Action> actions;
  struct Removal {
    std::string device;
    std::vector<std::string> names;
    int replica =
        -1;  // >= 0: a stale copy of a wanted replica (removed only if that replica converged)
  };
  std::vector<Removal> removals;
  std::optional<Error> error;  // planning failed for this service
};

// Reads the state of every member and decides, per replica, where it goes and what changes.
Result<Plan> plan_unit(Inventory& inv, Fleet& fleet, const ClusterInfo& cl, Unit& u) {
  Plan p;
  p.unit = &u;
  const Service& s = *u.svc;
  p.hash = spec_hash_with(s, u.runtime ? &*u.runtime : nullptr);
  Service sized = s;
  sized.replicas = u.replicas;
  p.host_plan = render_host_plan(sized, u.runtime ? &*u.runtime : nullptr);
  // Where each existing replica runs: seen live, or (on a device that cannot be reached now)
  // as last recorded. A replica stays on its device: an unreachable one fails and a re-run
  // completes it, rather than being started twice.
  std::map<int, std::string> where;
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) continue;
    for (const auto& c : d->managed) {
      if (c.service != s.name) continue;
      if (!where.count(c.replica)) where[c.replica] = m;
    }
  }
  GEDGE_TRY_ASSIGN(auto rec,
                   inv.query("SELECT placement FROM services WHERE name = ? AND cluster = ?",
                             {s.name, cl.name}));
  if (!rec.empty() && rec[0]["placement"].is_string()) {
    auto pl = json::parse(rec[0]["placement"].get<std::string>(), nullptr, false);
    if (pl.is_object())
      for (const auto& e : pl.value("placements", json::array())) {
        int r = e.value("replica", -1);
        std::string node = e.value("node", "");
        if (r < 0 || where.count(r) ||
            std::find(cl.members.begin(), cl.members.end(), node) == cl.members.end())
          continue;
        GEDGE_TRY_ASSIGN(auto* d, fleet.get(node));
        if (d->down) where[r] = node;
      }
  }
  bool ports = has_tcp_ports(s);
  std::set<std::string> taken;  // devices holding a replica of this service (host ports: one each)
  std::map<int, std::string> assign;
  for (int r = 0; r < u.replicas; ++r) {
    if (!u.placed.empty()) {
      assign[r] = u.placed[static_cast<std::size_t>(r) % u.placed.size()];
    } else if (where.count(r)) {
      assign[r] = where[r];
    }
    if (assign.count(r)) taken.insert(assign[r]);
  }
  for (int r = 0; r < u.replicas; ++r) {
    if (assign.count(r)) continue;
    // Least loaded reachable member; ties: more memory, then name.
    Device* best = nullptr;
    for (const auto& m : cl.members) {
      GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
      if (d->down || (ports && taken.count(m))) continue;
      auto load = [](Device* x) { return static_cast<int>(x->managed.size()) + x->assigned; };
      auto mem = [](Device* x) {
        return x->facts.is_object() && x->facts.contains("memory_bytes") &&
                       x->facts["memory_bytes"].is_number()
                   ? x->facts["memory_bytes"].get<double>()
                   : 0.0;
      };
      if (!best || load(d) < load(best) || (load(d) == load(best) && mem(d) > mem(best))) best = d;
    }
    if (!best) {
      std::size_t up = 0;
      for (const auto& m : cl.members) {
        GEDGE_TRY_ASSIGN(auto* member, fleet.get(m));
        if (!member->down) ++up;
      }
      if (up == 0) {
        p.error = Error{ErrorCode::unreachable,
                        fmt::format("no member of cluster '{}' is reachable", cl.name), ""};
        return p;
      }
      p.error = Error{
          ErrorCode::usage,
          fmt::format("service '{}': {} replicas publish host ports, so each needs its own device; "
                      "{} reachable devices are free",
                      s.name, u.replicas, up - std::min(up, taken.size())),
          "lower replicas, or add devices with 'gedge cluster join'"};
      return p;
    }
    assign[r] = best->name;
    best->assigned++;
    taken.insert(best->name);
  }
  if (ports) {
    std::map<std::string, int> per;
    for (const auto& [r, dev] : assign)
      if (++per[dev] > 1) {
        p.error = Error{
            ErrorCode::usage,
            fmt::format(
                "service '{}' publishes host ports, but replicas {} go to the same device '{}'",
                s.name, r, dev),
            "one replica per device for services with host ports"};
        return p;
      }
  }
  for (int r = 0; r < u.replicas; ++r) {
    Action a;
    a.replica = r;
    a.device = assign[r];
    a.from_placement = !u.placed.empty();
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(a.device));
    if (where.count(r) && where[r] != a.device) {
      a.action = "move";
      a.from = where[r];
    } else if (d->down) {
      a.action = "create";  // unknown: it fails when applied, naming the device
    } else {
      auto cur = replica_ctrs(*d, s.name, r);
      auto old = replica_ctrs(*d, s.name, r, true);
      if (cur.empty() && !old.empty()) {
        a.action = "recover";  // an interrupted replace left only the renamed old replica
      } else if (cur.empty()) {
        a.action = "create";
      } else {
        bool same = true, running = true;
        for (const auto& c : cur) {
          same = same && c.hash == p.hash;
          running = running && c.state == "running";
        }
        if (cur.size() != s.containers.size()) same = false;
        a.action = !same ? "replace" : running && old.empty() ? "unchanged" : "start";
      }
    }
    p.actions.push_back(a);
  }
  // Replicas beyond the count, and stale copies of a replica on a device it no longer runs on
  // (other than the one a move leaves, which the move removes), are removed last.
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) continue;
    std::vector<std::string> extras;
    std::map<int, std::vector<std::string>> stale;
    for (const auto& c : d->managed) {
      if (c.service != s.name) continue;
      if (c.replica >= u.replicas || c.replica < 0) {
        extras.push_back(c.name);
      } else if (assign[c.replica] != m) {
        const auto& a = p.actions[static_cast<std::size_t>(c.replica)];
        if (!(a.action == "move" && a.from == m)) stale[c.replica].push_back(c.name);
      }
    }
    if (!extras.empty()) p.removals.push_back({m, extras, -1});
    for (auto& [r, names] : stale) p.removals.push_back({m, names, r});
  }
  return p;
}

std::vector<std::string> argv_for(const Plan& p, int replica, std::size_t ci,
                                  const std::string& cpuset) {
  std::vector<std::string> argv;
  for (const auto& a : p.host_plan["spec"]["containers"][static_cast<std::size_t>(replica)]
                                  ["containers"][ci]["argv"])
    argv.push_back(a.get<std::string>());
  argv.erase(argv.begin());  // "podman": added by podman()
  if (!cpuset.empty()) argv.insert(argv.begin() + 2, {"--cpuset-cpus", cpuset});  // after "run -d"
  return argv;
}

std::vector<std::string> names_for(const Plan& p, int replica) {
  std::vector<std::string> out;
  for (const auto& c :
       p.host_plan["spec"]["containers"][static_cast<std::size_t>(replica)]["containers"])
    out.push_back(c["name"].get<std::string>());
  return out;
}

// Runs the replica's containers; on failure removes what it started.
// The unit's ConfigMap/Secret files on the device: each set's directory is written once (its
// name carries the contents' digest) into a temporary directory, then renamed into place. Every
// step is an argv under sudo; the contents go on stdin, never on a command line.
Result<void> ensure_files(Device& d, const Unit& u) {
  for (const auto& fs : u.files) {
    GEDGE_TRY_ASSIGN(auto there, d.session->exec({"test", "-d", fs.dir}, std::nullopt, true));
    if (there.exit_code == 0) continue;
    std::string tmp = fs.dir + ".new";
    std::string dmode = fs.secret ? "0700" : "0755", fmode = fs.secret ? "0600" : "0644";
    auto run = [&](const std::vector<std::string>& argv,
                   std::optional<std::string_view> in) -> Result<void> {
      GEDGE_TRY_ASSIGN(auto r, d.session->exec(argv, in, true));
      if (r.exit_code != 0)
        return fail(ErrorCode::failure,
                    fmt::format("device {}: {} {}: {}", d.name, argv[0], argv.back(), trim(r.err)));
      return {};
    };
    GEDGE_TRY(run({"rm", "-rf", "--", tmp}, std::nullopt));
    GEDGE_TRY(
        run({"install", "-d", "-m", dmode, "-o", "root", "-g", "root", "--", tmp}, std::nullopt));
    for (const auto& [path, bytes] :
         fs.files) {  // created empty with its mode, then filled from stdin
      GEDGE_TRY(run(
          {"install", "-D", "-m", fmode, "-o", "root", "-g", "root", "/dev/null", tmp + "/" + path},
          std::nullopt));
      GEDGE_TRY(run({"dd", "status=none", "of=" + tmp + "/" + path}, bytes));
    }
    GEDGE_TRY(run({"mv", "-T", "--", tmp, fs.dir}, std::nullopt));
  }
  return {};
}

// podman secrets gedge made for service `svc` (gedge-SVC-DIGEST, 16 hex digits): only those
// are ever removed (another service's name may extend this one's: "web" and "web-api").
bool service_secret(const std::string& name, const std::string& svc) {
  std::string prefix = "gedge-" + svc + "-";
  if (name.size() != prefix.size() + 16 || name.compare(0, prefix.size(), prefix) != 0)
    return false;
  return name.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

// The unit's podman secrets on the device: created once (the name carries the value's digest)
// with `podman secret create NAME -`, the value on stdin, never on a command line.
Result<void> ensure_secrets(Device& d, const Unit& u) {
  for (const auto& sec : u.secrets) {
    GEDGE_TRY_ASSIGN(auto there, podman(d, {"secret", "inspect", "--format", "{{.ID}}", sec.name}));
    if (there.exit_code == 0) continue;
    GEDGE_TRY_ASSIGN(auto r, d.session->exec({"podman", "secret", "create", sec.name, "-"},
                                             std::string_view(sec.value), true));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "creating secret " + sec.name, r));
  }
  return {};
}

// The service's gedge-made podman secrets on the device other than `keep` (all when empty).
Result<void> remove_secrets(Device& d, const std::string& svc,
                            const std::vector<PodmanSecret>& keep) {
  GEDGE_TRY_ASSIGN(auto r, podman(d, {"secret", "ls", "--format", "{{.Name}}"}));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "listing secrets", r));
  std::vector<std::string> gone;
  for (const auto& name : split_lines(r.out)) {
    bool kept = std::any_of(keep.begin(), keep.end(),
                            [&](const PodmanSecret& k) { return k.name == name; });
    if (service_secret(name, svc) && !kept) gone.push_back(name);
  }
  if (gone.empty()) return {};
  std::vector<std::string> args{"secret", "rm"};
  args.insert(args.end(), gone.begin(), gone.end());
  GEDGE_TRY_ASSIGN(auto rm, podman(d, args));
  if (rm.exit_code != 0) return std::unexpected(podman_error(d, "removing secrets", rm));
  return {};
}

// The plan's podman volumes (NFS exports) on the device, created once with gedge's label; the
// name carries a digest of server, path and access mode, so an existing one is the same.
Result<void> ensure_volumes(Device& d, const Plan& p) {
  for (const auto& v : p.host_plan["spec"].value("volumes", json::array())) {
    std::string name = v["name"];
    GEDGE_TRY_ASSIGN(auto there, podman(d, {"volume", "inspect", "--format", "{{.Name}}", name}));
    if (there.exit_code == 0) continue;
    std::vector<std::string> args{"volume",    "create",  "--driver",
                                  v["driver"], "--label", "gedge.managed=true"};
    for (auto it = v["options"].begin(); it != v["options"].end(); ++it) {
      args.push_back("--opt");
      args.push_back(it.key() + "=" + it.value().get<std::string>());
    }
    args.push_back(name);
    GEDGE_TRY_ASSIGN(auto r, podman(d, args));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "creating volume " + name, r));
  }
  return {};
}

// After a replace: directories of earlier contents of this unit's volumes, no longer mounted.
void prune_files(Device& d, const Unit& u) {
  if (u.files.empty()) return;
  std::string parent = fmt::format("{}/{}", kFilesRoot, u.svc->name);
  auto r =
      d.session->exec({"find", parent, "-mindepth", "1", "-maxdepth", "1"}, std::nullopt, true);
  if (!r || r->exit_code != 0) return;
  for (const auto& line : split_lines(r->out)) {
    std::string path = trim(line);
    bool keep = path.empty();
    for (const auto& fs : u.files) keep = keep || path == fs.dir;
    if (!keep) (void)d.session->exec({"rm", "-rf", "--", path}, std::nullopt, true);
  }
}

Result<void> start_new(Inventory& inv, Device& d, const Plan& p, int replica,
                       Clock::time_point deadline, bool wait) {
  const Service& s = *p.unit->svc;
  auto names = names_for(p, replica);
  std::string cpuset;
  if (s.pin) {
    GEDGE_TRY_ASSIGN(cpuset, plan_cpuset(inv, d, names[0], s.pin->cores));
  }
  if (p.unit->runtime) {
    GEDGE_TRY_ASSIGN(
        auto ok, d.session->exec({"test", "-d", p.unit->runtime->host_dir}, std::nullopt, true));
    if (ok.exit_code != 0)
      return fail(ErrorCode::not_found,
                  fmt::format("device {}: runtime bundle {} is not at {}", d.name,
                              p.unit->runtime->id.substr(0, 12), p.unit->runtime->host_dir),
                  fmt::format("push it first: gedge runtime push {} --device {}",
                              p.unit->runtime->id.substr(0, 12), d.name));
  }
  GEDGE_TRY(ensure_files(d, *p.unit));
  GEDGE_TRY(ensure_secrets(d, *p.unit));
  GEDGE_TRY(ensure_volumes(d, p));
  Result<void> res;
  {
    CancelShield shield;  // `podman run -d` returns quickly; never leave one running unseen
    for (std::size_t ci = 0; ci < s.containers.size() && res; ++ci) {
      auto r = podman(d, argv_for(p, replica, ci, cpuset));
      if (!r)
        res = std::unexpected(r.error());
      else if (r->exit_code != 0)
        res = std::unexpected(podman_error(d, "podman run " + names[ci], *r));
    }
  }
  if (res && wait) res = wait_up(d, names, tcp_host_ports(s), deadline);
  if (!res) {
    CancelShield shield;  // leave nothing half-started, even on Ctrl-C
    (void)remove_ctrs(d, names);
    return res;
  }
  if (!cpuset.empty()) GEDGE_TRY(PinStore(inv).put({d.name, names[0], cpuset, ""}));
  return {};
}

// Replace: old renamed aside and stopped, new started; the old one is removed only when the new
// one is up, and restored otherwise (also on Ctrl-C).
Result<void> replace(Inventory& inv, Device& d, const Plan& p, int replica,
                     Clock::time_point deadline, bool wait) {
  const Service& s = *p.unit->svc;
  auto cur = replica_ctrs(d, s.name, replica);
  std::vector<std::string> olds;
  // Rename and stop run to completion even on Ctrl-C (each is bounded: stop -t 10): abandoning a
  // remote `podman stop` half-way would let it stop the replica after we restored it.
  std::optional<CancelShield> shield_steps(std::in_place);
  for (const auto& c : cur) {
    std::string old = c.name + kOldSuffix;
    GEDGE_TRY_ASSIGN(auto r, podman(d, {"rename", c.name, old}));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "renaming " + c.name, r));
    olds.push_back(old);
  }
  auto restore = [&]() {
    CancelShield shield;
    for (std::size_t i = 0; i < cur.size(); ++i) {
      (void)podman(d, {"rename", olds[i], cur[i].name});
      if (cur[i].state == "running") (void)podman(d, {"start", cur[i].name});
    }
  };
  for (const auto& o : olds) {
    auto r = podman(d, {"stop", "-t", "10", o});
    if (!r || r->exit_code != 0) {
      restore();
      return r ? std::unexpected(podman_error(d, "stopping " + o, *r)) : std::unexpected(r.error());
    }
  }
  shield_steps.reset();
  Result<void> started = cancel_requested()
                             ? Result<void>(fail(ErrorCode::interrupted, "interrupted"))
                             : start_new(inv, d, p, replica, deadline, wait);
  if (!started) {
    restore();
    Error e = started.error();
    if (e.code != ErrorCode::interrupted) {
      e.message += "; the previous version was restored";
    } else {
      e.message = fmt::format(
          "interrupted while replacing replica {} on {}: the previous version was restored",
          replica, d.name);
    }
    return std::unexpected(e);
  }
  CancelShield shield;  // the new replica runs: finish the swap
  GEDGE_TRY(remove_ctrs(d, olds));
  prune_files(d, *p.unit);
  if (!p.unit->secrets.empty()) (void)remove_secrets(d, s.name, p.unit->secrets);  // earlier values
  return {};
}

Result<void> recover(Device& d, const Service& s, int replica) {
  for (const auto& c : replica_ctrs(d, s.name, replica, true)) {
    std::string name = c.name.substr(0, c.name.size() - std::strlen(kOldSuffix));
    GEDGE_TRY_ASSIGN(auto r, podman(d, {"rename", c.name, name}));
    if (r.exit_code != 0) return std::unexpected(podman_error(d, "restoring " + c.name, r));
  }
  return refresh(d);
}

Result<void> start_existing(Device& d, const Plan& p, int replica, Clock::time_point deadline,
                            bool wait) {
  auto names = names_for(p, replica);
  // A leftover "-old" copy next to a current replica: the swap finished, the cleanup did not.
  std::vector<std::string> leftovers;
  for (const auto& c : replica_ctrs(d, p.unit->svc->name, replica, true))
    leftovers.push_back(c.name);
  GEDGE_TRY(remove_ctrs(d, leftovers));
  GEDGE_TRY(ensure_files(d, *p.unit));
  GEDGE_TRY(ensure_secrets(d, *p.unit));
  GEDGE_TRY(ensure_volumes(d, p));
  std::vector<std::string> args{"start"};
  args.insert(args.end(), names.begin(), names.end());
  GEDGE_TRY_ASSIGN(auto r, podman(d, args));
  if (r.exit_code != 0) return std::unexpected(podman_error(d, "starting replica", r));
  if (wait) return wait_up(d, names, tcp_host_ports(*p.unit->svc), deadline);
  return {};
}

json pull_images(Fleet& fleet, const std::vector<Plan>& plans, Reporter& rep,
                 std::optional<Error>& fatal, std::map<std::string, Error>& device_errors) {
  // device -> images it needs
  std::map<std::string, std::set<std::string>> need;
  for (const auto& p : plans) {
    if (p.error) continue;
    for (const auto& a : p.actions)
      if (a.action == "create" || a.action == "replace" || a.action == "move")
        for (const auto& c : p.unit->svc->containers) need[a.device].insert(c.image);
  }
  json pulled = json::array();
  for (const auto& [dev, images] : need) {
    auto d = fleet.get(dev);
    if (!d) {
      device_errors[dev] = d.error();
      continue;
    }
    if ((*d)->down) {
      device_errors[dev] = *(*d)->down;
      continue;
    }
    for (const auto& img : images) {
      rep.step(dev, "pulling " + img);
      auto r = podman(**d, {"pull", "--quiet", "--", img});
      if (!r) {
        if (r.error().code == ErrorCode::interrupted) {
          fatal = r.error();
          return pulled;
        }
        device_errors[dev] = r.error();
        break;
      }
      if (r->exit_code != 0) {
        std::string err = r->err + r->out;
        auto has = [&](const char* t) { return err.find(t) != std::string::npos; };
        Error e = podman_error(**d, "pulling " + img, *r);
        if (has("manifest unknown") || has("name unknown") || has("not found") || has("404")) {
          e.code = ErrorCode::not_found;
          e.message =
              fmt::format("image {} is not in its registry ({}): {}", img, dev, last_lines(err, 1));
          e.hint = "list what the registry has with 'gedge svc catalog --registry HOST:PORT'";
        } else if (has("connection refused") || has("no route to host") || has("i/o timeout") ||
                   has("network is unreachable") || has("dial tcp")) {
          e.code = ErrorCode::unreachable;
          e.message = fmt::format("the registry of {} is unreachable from {}: {}", img, dev,
                                  last_lines(err, 1));
          e.hint = "start the registry (the lab: tests/lab/lab.sh up) and deploy again";
        } else if (has("HTTP response to HTTPS client")) {
          e.hint =
              "the device does not trust this plain-HTTP registry: rebuild the cluster with "
              "--registry HOST:PORT";
        }
        fatal = e;  // nothing has changed yet: stop here
        return pulled;
      }
      pulled.push_back({{"device", dev}, {"image", img}});
    }
  }
  return pulled;
}

}  // namespace

Result<std::vector<UnitResult>> deploy_hosts(Inventory& inv, const Paths& paths,
                                             const ClusterInfo& cl, std::vector<Unit>& units,
                                             const DeployRequest& req, Reporter& rep) {
  Fleet fleet(inv, paths, req.ssh_timeout_s);
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      rep.warn(fmt::format("{}: {}", m, d->down->message));
      continue;
    }
    auto r = refresh(*d);
    if (!r) {
      if (r.error().code == ErrorCode::interrupted || r.error().code == ErrorCode::auth)
        return std::unexpected(r.error());
      d->down = r.error();
    }
  }
  std::vector<Plan> plans;
  for (auto& u : units) {
    GEDGE_TRY_ASSIGN(auto plan, plan_unit(inv, fleet, cl, u));
    plans.push_back(std::move(plan));
  }
  std::vector<UnitResult> results(units.size());
  auto base_out = [&](const Plan& p) {
    return json{{"name", p.unit->svc->name},
                {"namespace", p.unit->svc->namespace_},
                {"replicas", p.unit->replicas},
                {"spec_hash", p.hash},
                {"runtime", p.unit->runtime ? json(p.unit->runtime->id) : json(nullptr)}};
  };
  for (std::size_t i = 0; i < plans.size(); ++i)
    if (plans[i].error && plans[i].error->code == ErrorCode::usage)
      return std::unexpected(*plans[i].error);

  if (req.dry_run) {
    for (std::size_t i = 0; i < plans.size(); ++i) {
      auto& p = plans[i];
      json out = base_out(p);
      json actions = json::array();
      for (const auto& a : p.actions) {
        json j{{"replica", a.replica},
               {"device", a.device},
               {"action", a.action},
               {"state", "planned"}};
        if (!a.from.empty()) j["from"] = a.from;
        GEDGE_TRY_ASSIGN(auto* d, fleet.get(a.device));
        if (d->down) j["warning"] = d->down->message;
        actions.push_back(j);
      }
      for (const auto& rm : p.removals)
        for (const auto& n : rm.names)
          actions.push_back({{"device", rm.device},
                             {"container", n},
                             {"action", "remove"},
                             {"state", "planned"}});
      out["actions"] = actions;
      out["state"] = "planned";
      results[i].out = out;
      if (p.error) {
        results[i].ok = false;
        results[i].error = p.error;
      }
    }
    return results;
  }

  std::optional<Error> fatal;
  std::map<std::string, Error> device_errors;
  json pulled = pull_images(fleet, plans, rep, fatal, device_errors);
  if (fatal) return std::unexpected(*fatal);

  for (std::size_t i = 0; i < plans.size(); ++i) {
    auto& p = plans[i];
    auto& res = results[i];
    res.out = base_out(p);
    json actions = json::array();
    auto deadline =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(req.timeout_s * 1000));
    auto fail_action = [&](json& j, const Error& e) {
      j["state"] = "failed";
      j["error"] = e.message;
      res.ok = false;
      if (!res.error) res.error = e;
    };
    if (p.error) {
      res.ok = false;
      res.error = p.error;
    }
    bool stop_rolling = false;
    for (const auto& a : p.actions) {
      json j{{"replica", a.replica}, {"device", a.device}, {"action", a.action}};
      if (!a.from.empty()) j["from"] = a.from;
      if (cancel_requested())
        return fail(ErrorCode::interrupted, "interrupted: replicas already converged keep running");
      auto d = fleet.get(a.device);
      if (!d) {
        fail_action(j, d.error());
        actions.push_back(j);
        continue;
      }
      Device& dev = **d;
      if (dev.down || device_errors.count(a.device)) {
        Error e = dev.down ? *dev.down : device_errors[a.device];
        e.code = ErrorCode::unreachable;
        fail_action(j, e);
        actions.push_back(j);
        continue;
      }
      if (stop_rolling && a.action == "replace") {
        j["state"] = "skipped";
        j["error"] = "an earlier replica's replacement failed; this one keeps the previous version";
        res.ok = false;
        actions.push_back(j);
        continue;
      }
      rep.step(a.device, fmt::format("{} replica {}: {}", p.unit->svc->name, a.replica, a.action));
      Result<void> r;
      if (a.action == "recover") {
        r = recover(dev, *p.unit->svc, a.replica);
        if (r) {
          bool same = true;
          for (const auto& c : replica_ctrs(dev, p.unit->svc->name, a.replica))
            same = same && c.hash == p.hash;
          r = same ? start_existing(dev, p, a.replica, deadline, req.wait)
                   : replace(inv, dev, p, a.replica, deadline, req.wait);
        }
      } else if (a.action == "create") {
        r = start_new(inv, dev, p, a.replica, deadline, req.wait);
      } else if (a.action == "start") {
        r = start_existing(dev, p, a.replica, deadline, req.wait);
      } else if (a.action == "replace") {
        r = replace(inv, dev, p, a.replica, deadline, req.wait);
        if (!r) stop_rolling = true;
      } else if (a.action == "move") {
        r = start_new(inv, dev, p, a.replica, deadline, req.wait);
        if (r) {
          auto from = fleet.get(a.from);
          if (from && !(*from)->down) {
            std::vector<std::string> names;
            for (const auto& c : (*from)->managed)
              if (c.service == p.unit->svc->name && c.replica == a.replica) names.push_back(c.name);
            CancelShield shield;
            r = remove_ctrs(**from, names);
          }
        }
      }
      if (!r) {
        if (r.error().code == ErrorCode::interrupted) return std::unexpected(r.error());
        fail_action(j, r.error());
      } else {
        j["state"] = "ok";
        json pl{{"stage", p.unit->svc->name},
                {"cluster", cl.name},
                {"node", a.device},
                {"replica", a.replica}};
        if (a.from_placement) pl["from_placement"] = true;
        res.placements.push_back(pl);
      }
      actions.push_back(j);
    }
    // Extras go only once the wanted replicas are up.
    std::set<int> failed_replicas;
    for (const auto& a : actions)
      if (a.value("state", "") != "ok" && a.contains("replica"))
        failed_replicas.insert(a["replica"].get<int>());
    for (const auto& rm : p.removals) {
      const auto& devname = rm.device;
      const auto& names = rm.names;
      if (rm.replica >= 0 && failed_replicas.count(rm.replica)) continue;
      auto d = fleet.get(devname);
      json j{{"device", devname}, {"containers", names}, {"action", "remove"}};
      auto r = d ? remove_ctrs(**d, names) : Result<void>(std::unexpected(d.error()));
      if (!r)
        fail_action(j, r.error());
      else
        j["state"] = "ok";
      if (d && r) {
        for (const auto& n : names) (void)PinStore(inv).remove(devname, n);
      }
      actions.push_back(j);
    }
    res.out["actions"] = actions;
    res.out["state"] = res.ok ? "deployed" : "degraded";
    res.out["pulled"] = json::array();
    for (const auto& pl : pulled)
      for (const auto& c : p.unit->svc->containers)
        if (pl["image"] == c.image) res.out["pulled"].push_back(pl);
  }
  return results;
}

Result<StatusOutcome> status_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                                   double ssh_timeout_s) {
  GEDGE_TRY_ASSIGN(auto cl, load_cluster(inv, rec.cluster));
  Fleet fleet(inv, paths, ssh_timeout_s);
  StatusOutcome out;
  json replicas = json::array();
  int ready = 0;
  std::vector<std::string> down;
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      down.push_back(m);
      continue;
    }
    GEDGE_TRY(refresh(*d));
    std::vector<const Ctr*> mine;
    std::vector<std::string> args{"container", "inspect", "--format",
                                  "{{.Name}} {{.RestartCount}}"};
    for (const auto& c : d->managed)
      if (c.service == rec.name) {
        mine.push_back(&c);
        args.push_back(c.name);
      }
    if (mine.empty()) continue;
    // Restart counts of all of them in one round trip: "NAME COUNT" per line.
    GEDGE_TRY_ASSIGN(auto ins, podman(*d, args));
    std::map<std::string, int> restarts;
    for (const auto& line : split_lines(ins.out)) {
      auto sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      try {
        restarts[line.substr(0, sp)] = std::stoi(line.substr(sp + 1));
      } catch (...) {
      }
    }
    for (const auto* c : mine) {
      json ports = json::array();
      for (const auto& pt : c->ports)
        ports.push_back(fmt::format("{}:{}->{}/{}", d->target.host, pt.value("host_port", 0),
                                    pt.value("container_port", 0), pt.value("protocol", "tcp")));
      if (c->state == "running") ++ready;
      replicas.push_back({{"replica", c->replica},
                          {"device", m},
                          {"container", c->name},
                          {"state", c->state},
                          {"restarts", restarts.count(c->name) ? restarts[c->name] : 0},
                          {"ports", ports},
                          {"image", c->image},
                          {"current", c->hash == rec.placement.value("spec_hash", "")}});
    }
  }
  std::sort(replicas.begin(), replicas.end(), [](const json& a, const json& b) {
    return std::tie(a["replica"], a["container"]) < std::tie(b["replica"], b["container"]);
  });
  out.result = {{"name", rec.name},        {"cluster", rec.cluster},
                {"kind", "containers"},    {"namespace", rec.namespace_},
                {"desired", rec.replicas}, {"ready", ready},
                {"state", rec.state},      {"replicas", replicas},
                {"unreachable", down}};
  if (!down.empty())
    out.partial =
        Error{ErrorCode::partial,
              fmt::format("{} member(s) unreachable: {}", down.size(), fmt::join(down, ", ")), ""};
  return out;
}

Result<void> logs_hosts(Inventory& inv, const Paths& paths, const ServiceRecord& rec,
                        const LogsRequest& req, const std::function<void(std::string_view)>& sink) {
  Fleet fleet(inv, paths, req.ssh_timeout_s);
  std::vector<std::pair<int, std::string>> where;  // replica -> device
  for (const auto& p : rec.placement.value("placements", json::array())) {
    int r = p.value("replica", -1);
    if (req.replica && *req.replica != r) continue;
    where.push_back({r, p.value("node", "")});
  }
  if (where.empty())
    return fail(ErrorCode::not_found,
                req.replica
                    ? fmt::format("service '{}' has no replica {}", rec.name, *req.replica)
                    : fmt::format("service '{}' has no running replicas on record", rec.name));
  if (req.follow && where.size() > 1)
    return fail(ErrorCode::usage, "--follow reads one replica", "add --replica N");
  for (const auto& [r, dev] : where) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(dev));
    if (d->down) return std::unexpected(*d->down);
    std::vector<std::string> args{"podman", "logs"};
    if (req.tail >= 0) args.insert(args.end(), {"--tail", std::to_string(req.tail)});
    if (req.since_s) args.insert(args.end(), {"--since", fmt::format("{}s", *req.since_s)});
    if (req.follow) args.push_back("--follow");
    args.push_back(fmt::format("gedge-{}-{}", rec.name, r));
    std::string prefix = where.size() > 1 ? fmt::format("[{} {}] ", r, dev) : "";
    std::string pending;
    auto emit = [&](std::string_view chunk) {
      pending.append(chunk);
      std::size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        sink(prefix + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
    };
    GEDGE_TRY_ASSIGN(auto res, d->session->exec_stream(args, emit, true));
    if (!pending.empty()) sink(prefix + pending + "\n");
    if (res.exit_code != 0)
      return fail(ErrorCode::failure,
                  fmt::format("device {}: podman logs: {}", dev, last_lines(res.err, 2)));
  }
  return {};
}

Result<json> remove_hosts(Inventory& inv, const Paths& paths, const ClusterInfo& cl,
                          const ServiceRecord& rec, double ssh_timeout_s, Reporter& rep) {
  Fleet fleet(inv, paths, ssh_timeout_s);
  json out = json::array();
  std::vector<std::string> volumes;  // the podman volumes its plan creates (NFS)
  if (auto sp = spec_from_doc(rec.spec, rec.name); sp && !sp->is_pipeline)
    for (const auto& v : render_host_plan(sp->service)["spec"].value("volumes", json::array()))
      volumes.push_back(v["name"]);
  for (const auto& m : cl.members) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(m));
    if (d->down) {
      out.push_back({{"device", m}, {"state", "failed"}, {"error", d->down->message}});
      continue;
    }
    auto r = refresh(*d);
    if (!r) {
      out.push_back({{"device", m}, {"state", "failed"}, {"error", r.error().message}});
      continue;
    }
    std::vector<std::string> names;
    for (const auto& c : d->managed)
      if (c.service == rec.name) names.push_back(c.name);
    bool files =
        rec.spec.dump().find(fmt::format("\"{}/{}/", kFilesRoot, rec.name)) != std::string::npos;
    bool secrets =
        rec.spec.dump().find(fmt::format("\"secret\":\"gedge-{}-", rec.name)) != std::string::npos;
    if (names.empty() && !files && !secrets && volumes.empty()) continue;
    if (!names.empty()) rep.step(m, fmt::format("removing {}", fmt::join(names, ", ")));
    auto rm = remove_ctrs(*d, names);
    if (rm && files) {  // its ConfigMap/Secret files, once no container uses them
      auto r = d->session->exec({"rm", "-rf", "--", fmt::format("{}/{}", kFilesRoot, rec.name)},
                                std::nullopt, true);
      if (!r)
        rm = std::unexpected(r.error());
      else if (r->exit_code != 0)
        rm = fail(ErrorCode::failure, fmt::format("device {}: removing {}/{}: {}", m, kFilesRoot,
                                                  rec.name, trim(r->err)));
    }
    if (rm && secrets) rm = remove_secrets(*d, rec.name, {});  // the podman secrets it made
    for (const auto& name : volumes) {  // its NFS volumes, unless another service still uses one
      if (!rm) break;
      auto lab = podman(
          *d, {"volume", "inspect", "--format", "{{index .Labels \"gedge.managed\"}}", name});
      if (!lab || lab->exit_code != 0 || trim(lab->out) != "true") continue;  // gone, or not ours
      auto r = podman(*d, {"volume", "rm", name});
      if (!r)
        rm = std::unexpected(r.error());
      else if (r->exit_code != 0 && r->err.find("being used") == std::string::npos)
        rm = std::unexpected(podman_error(*d, "removing volume " + name, *r));
    }
    if (names.empty() && rm) continue;
    if (!rm)
      out.push_back({{"device", m},
                     {"containers", names},
                     {"state", "failed"},
                     {"error", rm.error().message}});
    else
      out.push_back({{"device", m}, {"containers", names}, {"state", "removed"}});
  }
  return out;
}

Result<std::optional<double>> cpu_usage_hosts(Inventory& inv, const Paths& paths,
                                              const ServiceRecord& rec, double ssh_timeout_s) {
  GEDGE_TRY_ASSIGN(auto cl, load_cluster(inv, rec.cluster));
  GEDGE_TRY_ASSIGN(auto spec, spec_from_doc(rec.spec, rec.name));
  double request = 0;
  for (const auto& c : spec.service.containers) {
    auto it = c.requests.find("cpu");
    if (it != c.requests.end())
      if (auto v = parse_cpu(it->second)) request += *v;
  }
  if (request <= 0) request = 1.0;
  Fleet fleet(inv, paths, ssh_timeout_s);
  double used = 0;
  int replicas = 0;
  std::set<std::string> devs;
  for (const auto& p : rec.placement.value("placements", json::array()))
    devs.insert(p.value("node", ""));
  // `podman top NAME pcpu` (ps's %CPU: CPU time over the process lifetime, summed over the
  // replica's processes). `podman stats` needs cgroup access that nested hosts (the lab's
  // full-OS containers) do not give; top works wherever podman can exec into /proc.
  for (const auto& dev : devs) {
    GEDGE_TRY_ASSIGN(auto* d, fleet.get(dev));
    if (d->down) continue;
    GEDGE_TRY(refresh(*d));
    std::map<int, double> per;  // replica -> % of one CPU, summed over its containers
    for (const auto& c : d->managed) {
      if (c.service != rec.name || c.replica < 0 || c.state != "running") continue;
      GEDGE_TRY_ASSIGN(auto r, podman(*d, {"top", c.name, "pcpu"}));
      if (r.exit_code != 0) continue;
      auto lines = split_lines(r.out);
      double sum = 0;
      for (std::size_t i = 1; i < lines.size(); ++i) {  // lines[0] is the %CPU header
        try {
          sum += std::stod(lines[i]);
        } catch (...) {
        }
      }
      per[c.replica] += sum;
    }
    for (const auto& [r, pct] : per) {
      used += pct / request;
      ++replicas;
    }
  }
  if (replicas == 0) return std::optional<double>{};
  return std::optional<double>{used / replicas};
}

}  // namespace gedge::svc::detail
