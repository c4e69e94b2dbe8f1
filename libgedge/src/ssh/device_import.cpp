// `device import`: hosts from Ansible inventories or ssh_config files, contacted in parallel
// like `device add` (one result per host, a failed host is not stored) or, with --no-connect,
// recorded in one transaction for offline onboarding.
#include "gedge/device_import.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "device_detail.hpp"
#include "gedge/document.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/stores.hpp"

namespace gedge {

using namespace detail;

namespace {

// device_add reports from worker threads: one at a time to the real reporter.
class SerialReporter : public Reporter {
 public:
  explicit SerialReporter(Reporter& r) : r_(r) {}
  void progress(std::string_view t, std::size_t d, std::size_t n) override {
    std::lock_guard l(m_);
    r_.progress(t, d, n);
  }
  void step(std::string_view t, std::string_view w) override {
    std::lock_guard l(m_);
    r_.step(t, w);
  }
  void info(std::string_view m) override {
    std::lock_guard l(m_);
    r_.info(m);
  }
  void warn(std::string_view m) override {
    std::lock_guard l(m_);
    r_.warn(m);
  }

 private:
  Reporter& r_;
  std::mutex m_;
};

std::string format_of(const DeviceImportRequest& req, const std::string& file) {
  if (!req.format.empty()) return req.format;
  auto dot = file.rfind('.');
  std::string ext = dot == std::string::npos ? "" : file.substr(dot + 1);
  return (ext == "yml" || ext == "yaml") ? "yaml" : "ini";
}

std::string local_user() {
  if (passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return "root";
}

nlohmann::json result_of(const ImportHost& h, std::string status, const std::string& code,
                         const std::string& msg) {
  return {{"device", h.name},
          {"status", std::move(status)},
          {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)},
          {"message", msg},
          {"file", h.file},
          {"line", h.line},
          {"host", h.host},
          {"groups", h.groups}};
}

}  // namespace

Result<FanOutReport> device_import(Inventory& inv, const Paths& paths,
                                   const DeviceImportRequest& req, Reporter& rep) {
  if (req.files.empty())
    return fail(ErrorCode::usage, "no inventory file given", "gedge device import FILE...");
  // Parse everything first: a bad line anywhere stores nothing.
  std::vector<ImportHost> hosts;
  std::map<std::string, std::size_t> index;
  std::map<std::string, std::string> config_of;  // host -> the ssh config file that names it
  for (const auto& f : req.files) {
    std::string fmt_ = format_of(req, f);
    if (fmt_ != "ini" && fmt_ != "yaml" && fmt_ != "ssh-config")
      return fail(ErrorCode::usage, fmt::format("unknown --format '{}'", fmt_),
                  "use ini, yaml or ssh-config");
    GEDGE_TRY_ASSIGN(auto text, read_input_file(f, 64u << 20, "inventory file"));
    std::vector<ImportHost> got;
    if (fmt_ == "ini") {
      GEDGE_TRY_ASSIGN(got, parse_ansible_ini(text, f));
    } else if (fmt_ == "yaml") {
      GEDGE_TRY_ASSIGN(got, parse_ansible_yaml(text, f));
    } else {
      GEDGE_TRY_ASSIGN(got, parse_ssh_config_hosts(text, f));
    }
    for (auto& h : got) {
      if (fmt_ == "ssh-config") config_of[h.name] = f;
      for (const auto& s : h.secrets)
        rep.warn(fmt::format("{}:{}: {} of host '{}' is a secret; gedge does not store it", h.file,
                             h.line, s, h.name));
      if (auto it = index.find(h.name); it != index.end()) {
        // Several sources name the host: later values win, groups add up (as in Ansible).
        auto& old = hosts[it->second];
        for (const auto& g : old.groups)
          if (std::find(h.groups.begin(), h.groups.end(), g) == h.groups.end())
            h.groups.push_back(g);
        std::sort(h.groups.begin(), h.groups.end());
        for (const auto& [k, v] : old.labels) h.labels.try_emplace(k, v);
        old = std::move(h);
      } else {
        index[h.name] = hosts.size();
        hosts.push_back(std::move(h));
      }
    }
  }
  if (hosts.empty()) return fail(ErrorCode::usage, "the inventory names no hosts");

  nlohmann::json results = nlohmann::json::array();
  std::size_t pinned_count = 0;
  if (req.no_connect) {
    // ssh_config hosts are what `ssh -G -F FILE` says they are; an inventory's address is read
    // as `device add --host` reads it (user@host:port), so a recorded device is what a
    // connecting import would have stored.
    for (auto& h : hosts) {
      auto cf = config_of.find(h.name);
      if (cf == config_of.end()) {
        GEDGE_TRY_ASSIGN(auto a,
                         parse_address(h.host, fmt::format("{}:{}: address", h.file, h.line)));
        if (a.port && h.port && a.port != h.port)
          return fail(
              ErrorCode::usage,
              fmt::format("{}:{}: host '{}' names port {} in its address and {} in ansible_port",
                          h.file, h.line, h.name, a.port, h.port));
        h.host = a.host;
        if (a.port) h.port = a.port;
        if (h.user.empty()) h.user = a.user;
        continue;
      }
      GEDGE_TRY_ASSIGN(auto rh, resolve_ssh_host(h.name, "", 0, cf->second));
      h.host = rh.host;
      h.port = rh.port;
      h.user = rh.user;
    }
    // Keys the operator's known_hosts files list pin the hosts they name (looked up by the
    // address and the inventory name); hosts the files do not name stay unpinned.
    std::vector<ListedKey> listed(hosts.size());
    if (!req.known_hosts_files.empty()) {
      std::vector<std::vector<std::string>> names;
      for (const auto& h : hosts)
        names.push_back(known_hosts_names(h.host, h.port ? h.port : 22, h.name));
      GEDGE_TRY_ASSIGN(listed, known_hosts_listed_keys(req.known_hosts_files, names));
    }
    std::string now = now_rfc3339();
    std::string me = local_user();
    std::vector<std::pair<std::string, std::string>> pinned;  // device, key line
    GEDGE_TRY(inv.write([&](Inventory& db) -> Result<void> {
      DeviceStore devices(db);
      results = nlohmann::json::array();
      pinned.clear();
      for (std::size_t i = 0; i < hosts.size(); ++i) {
        const auto& h = hosts[i];
        nlohmann::json labels = h.labels;
        nlohmann::json groups = h.groups;
        int port = h.port ? h.port : 22;
        std::string user = h.user.empty() ? me : h.user;
        const auto& lk = listed[i];
        if (!lk.conflict.empty()) {
          results.push_back(result_of(h, "host_key_mismatch", "host_key", lk.conflict));
          continue;
        }
        HostKey key;
        std::string pin_note;
        if (lk.key) {
          key.public_key = lk.key->key;
          key.type = key.public_key.substr(0, key.public_key.find(' '));
          key.fingerprint = key_fingerprint(key.public_key);
          pin_note = fmt::format("host key {} pinned from {}", key.fingerprint, lk.key->where);
          // The pin belongs to the address: another device's key there must agree.
          GEDGE_TRY_ASSIGN(auto at, devices.at_address(h.host, port));
          std::erase_if(at, [&](const SqlRow& r) {
            return r["name"] == h.name || r["host_key_fp"].is_null() || !r["proxy_jump"].is_null();
          });
          if (!at.empty() && at.front()["host_key_fp"] != key.fingerprint) {
            results.push_back(result_of(
                h, "host_key_mismatch", "host_key",
                fmt::format("{} lists {} for {}:{}, but device '{}' pinned {} there", lk.key->where,
                            key.fingerprint, h.host, port, at.front()["name"].get<std::string>(),
                            at.front()["host_key_fp"].get<std::string>())));
            continue;
          }
        } else if (!req.known_hosts_files.empty()) {
          pin_note = "not in the known_hosts files: host key not pinned (status unknown)";
        }
        GEDGE_TRY_ASSIGN(auto cur, devices.row(h.name));
        if (cur) {
          auto& c = *cur;
          if (c["host"] == h.host && c["port"] == port && c["user"] == user) {
            GEDGE_TRY(devices.set_groups(h.name, groups.dump(), now));
            if (lk.key && !c["host_key_fp"].is_string()) {
              GEDGE_TRY(devices.pin_key(h.name, key.type, key.fingerprint));
              pinned.emplace_back(h.name, key.public_key);
              results.push_back(result_of(h, "recorded", "", "already registered; " + pin_note));
            } else if (lk.key && c["host_key_fp"] != key.fingerprint) {
              results.push_back(
                  result_of(h, "host_key_mismatch", "host_key",
                            fmt::format("device '{}' is pinned with {}, but {} lists {}", h.name,
                                        c["host_key_fp"].get<std::string>(), lk.key->where,
                                        key.fingerprint)));
            } else {
              results.push_back(result_of(h, "unchanged", "", "already registered"));
            }
          } else {
            results.push_back(result_of(
                h, "failed", "conflict",
                fmt::format("device '{}' is already registered with another address", h.name)));
          }
          continue;
        }
        ImportedDevice d;
        d.name = h.name;
        d.host = h.host;
        d.port = port;
        d.user = user;
        if (!h.identity.empty()) d.identity = h.identity;
        d.labels = labels.dump();
        d.groups = groups.dump();
        if (lk.key) {
          d.host_key_type = key.type;
          d.host_key_fp = key.fingerprint;
        }
        d.now = now;
        GEDGE_TRY(devices.insert_imported(d));
        if (lk.key) pinned.emplace_back(h.name, key.public_key);
        results.push_back(result_of(h, "recorded", "", pin_note));
      }
      return {};
    }));
    // OpenSSH (Ansible, cluster export) checks the same keys under each device's HostKeyAlias.
    GEDGE_TRY(known_hosts_set(paths.known_hosts, pinned));
    pinned_count = pinned.size();
  } else {
    SerialReporter srep(rep);
    std::vector<nlohmann::json> per(hosts.size());
    std::atomic<std::size_t> next{0}, done{0};
    int workers = std::max(1, std::min<int>(req.parallel, static_cast<int>(hosts.size())));
    auto work = [&] {
      // Each worker has its own connection to the inventory (SQLite serialises the writes).
      auto own = Inventory::open(paths.db, false);
      for (std::size_t i; (i = next++) < hosts.size();) {
        const auto& h = hosts[i];
        if (cancel_requested()) {
          per[i] = result_of(h, "interrupted", "interrupted", "not started");
          continue;
        }
        if (!own) {
          per[i] = result_of(h, "failed", "failure", own.error().message);
          continue;
        }
        DeviceAddRequest a;
        a.name = h.name;
        a.host = h.host;
        a.port = h.port;
        a.user = h.user;
        a.identity = h.identity;
        a.labels = h.labels;
        a.groups = h.groups;
        a.accept_new = req.accept_new;
        a.known_hosts_files = req.known_hosts_files;
        a.timeout_s = req.timeout_s;
        a.ssh_config = config_of.count(h.name) ? config_of[h.name] : req.ssh_config;
        auto r = device_add(*own, paths, a, srep);
        if (r)
          per[i] = result_of(h, r->changed ? "ok" : "unchanged", "", "");
        else
          per[i] = result_of(h, device_status_for(r.error()),
                             std::string(error_name(r.error().code)), r.error().message);
        srep.progress("importing devices", ++done, hosts.size());
      }
    };
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w) pool.emplace_back(work);
    for (auto& t : pool) t.join();
    for (auto& p : per) results.push_back(std::move(p));
  }

  // Folding: recorded/unchanged count as ok for the exit status.
  nlohmann::json folded = nlohmann::json::array();
  int ok = 0, failed = 0, unreachable = 0;
  for (const auto& r : results) {
    std::string st = r["status"];
    bool good = st == "ok" || st == "unchanged" || st == "recorded";
    nlohmann::json f = r;
    if (good) f["status"] = "ok";
    folded.push_back(f);
    if (good)
      ++ok;
    else if (st == "unreachable")
      ++unreachable;
    else
      ++failed;
  }
  FanOutReport out;
  out.json = {{"results", results},
              {"summary",
               {{"ok", ok},
                {"failed", failed},
                {"unreachable", unreachable},
                {"hosts", results.size()},
                {"pinned_from_known_hosts", pinned_count}}},
              {"no_connect", req.no_connect}};
  out.error = fan_out_error(folded, "device import");
  if (out.error && ok > 0) out.error->code = ErrorCode::partial;
  return out;
}

}  // namespace gedge
