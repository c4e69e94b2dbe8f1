// gedge device: add | ls | show | rm | key | rekey | check | exec. Binds flags into request
// structs and hands them to libgedge (gedge/device.hpp); no business logic here.
#include "gedge/device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>

#include "app.hpp"
#include "gedge/cluster.hpp"
#include "gedge/config.hpp"
#include "gedge/device_import.hpp"
#include "gedge/document.hpp"
#include "gedge/keys.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

namespace {

// --known-hosts, else the config's known_hosts_files (checked when the config was loaded).
Result<std::vector<std::string>> known_hosts_files(Ctx& ctx, const std::vector<std::string>& flag) {
  if (!flag.empty()) return flag;
  GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
  GEDGE_TRY_ASSIGN(auto cfg, load_config(paths.config_file));
  return cfg.known_hosts_files;
}

struct SelectFlags {
  std::vector<std::string> names;
  bool all = false;
  std::vector<std::string> labels;
  std::string tier;
  std::vector<std::string> groups;
};

Result<DeviceSelector> selector(const SelectFlags& f) {
  DeviceSelector s;
  s.names = f.names;
  s.all = f.all;
  s.tier = f.tier;
  s.groups = f.groups;
  for (const auto& l : f.labels) {
    GEDGE_TRY_ASSIGN(auto label, parse_label(l));
    s.labels.push_back(std::move(label));
  }
  if (!s.names.empty() && (s.all || !s.labels.empty() || !s.groups.empty()))
    return fail(ErrorCode::usage, "give device names, or --all/--label/--group, not both");
  return s;
}

void add_select_flags(CLI::App* cmd, SelectFlags& f) {
  cmd->add_flag("--all", f.all, "Every registered device");
  cmd->add_option("-l,--label", f.labels,
                  "Only devices with this label (k=v; repeat: all must match)")
      ->option_text("K=V");
  cmd->add_option("--tier", f.tier, "Only devices of this tier")
      ->check(CLI::IsMember({"local", "neighbor", "cloud"}))
      ->option_text("TIER");
  cmd->add_option("-g,--group", f.groups,
                  "Only devices in this inventory group (device import; :children included; "
                  "repeat: all must match)")
      ->option_text("NAME");
}

// Reads a secret without it ever touching argv or logs; strips one trailing newline.
Result<std::string> read_password(const std::string& file, bool from_stdin) {
  std::string pw;
  if (from_stdin) {
    // On a terminal the password is typed: no echo (restored even when reading fails).
    struct termios saved {};
    bool tty = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
      struct termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
      std::cerr << "password: " << std::flush;
    }
    // At most 4096 bytes to the first newline: stdin may be /dev/zero or a stream with no newline.
    char c = 0;
    while (pw.size() <= 4096 && std::cin.get(c) && c != '\n') pw.push_back(c);
    if (tty) {
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
      std::cerr << "\n";
    }
    if (pw.size() > 4096) return fail(ErrorCode::usage, "--password-stdin: longer than 4096 bytes");
  } else {
    GEDGE_TRY_ASSIGN(pw, read_input_file(file, 4096, "--password-file"));
    auto nl = pw.find('\n');
    if (nl != std::string::npos) pw.resize(nl);
  }
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty()) return fail(ErrorCode::usage, "empty password");
  return pw;
}

const std::vector<Column> kDeviceColumns = {
    {"name", "/name"},       {"host", "/host"},       {"user", "/user"},
    {"tier", "/tier"},       {"status", "/status"},   {"rtt_ms", "/rtt_ms"},
    {"arch", "/facts/arch"}, {"cpus", "/facts/cpus"}, {"labels", "/labels_text"}};

// The table's LABELS column (k=v,...), added in place (-o json/yaml print the list without it).
void add_label_text(nlohmann::json& devices) {
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

std::string round_ms(const nlohmann::json& v) {
  if (!v.is_number()) return "-";
  return fmt::format("{:.2f}", v.get<double>());
}

}  // namespace

void register_device(CLI::App& app, Ctx& ctx) {
  auto* noun = app.add_subcommand("device", "");
  for (const auto& n : nouns())
    if (std::string_view(n.name) == "device") noun->description(n.summary);
  noun->require_subcommand(1);
  examples(noun, {"gedge device add cam-1 --host 10.0.0.5 --user pi --accept-new",
                  "gedge device ls -o json", "gedge device check --all",
                  "gedge device exec --label site=lab -- uname -a"});

  // ---- add -------------------------------------------------------------------------------
  {
    static DeviceAddRequest req;
    static std::vector<std::string> labels;
    static std::string password_file;
    static bool password_stdin = false;
    auto* cmd = noun->add_subcommand(
        "add", "Register a device: pin its host key, issue a token, collect facts");
    cmd->add_option("name", req.name, "Device name")->required();
    cmd->add_option(
           "--host", req.host,
           "HOST, USER@HOST, HOST:PORT or USER@HOST:PORT; HOST may be an ssh config alias "
           "(resolved once "
           "with ssh -G: HostName, Port, User, IdentityFile, ProxyJump, IdentityAgent are stored)")
        ->required()
        ->option_text("HOST");
    cmd->add_option("--port", req.port, "SSH port (default: from --host, the ssh config, else 22)")
        ->check(CLI::Range(1, 65535))
        ->option_text("PORT");
    cmd->add_option("--user", req.user,
                    "Login user (default: from --host, the ssh config, else the local user)")
        ->option_text("USER");
    cmd->add_option("--identity", req.identity, "Private key file to log in with")
        ->option_text("FILE");
    cmd->add_option("-l,--label", labels, "Label k=v (repeatable)")->option_text("K=V");
    cmd->add_option("--tier", req.tier, "Tier: local, neighbor or cloud")
        ->check(CLI::IsMember({"local", "neighbor", "cloud"}))
        ->option_text("TIER");
    cmd->add_option("--site", req.site, "Site name")->option_text("SITE");
    auto* hk = cmd->add_option("--host-key", req.host_key,
                               "Accept the host key only if it has this fingerprint")
                   ->option_text("SHA256:...");
    cmd->add_flag("--accept-new", req.accept_new, "Trust the presented host key on first contact")
        ->excludes(hk);
    cmd->add_option("--known-hosts", req.known_hosts_files,
                    "OpenSSH known_hosts file (repeatable): a line for the host pins its key "
                    "(hashed and [host]:port lines too), as does a host certificate signed by an "
                    "@cert-authority listed for it (verified by OpenSSH); another key there, "
                    "@revoked, or no certificate under a CA's pattern refuses it (exit 6)")
        ->option_text("FILE");
    auto* pf =
        cmd->add_option("--password-file", password_file,
                        "Bootstrap: log in once with the password in FILE and install gedge's key")
            ->option_text("FILE");
    cmd->add_flag("--password-stdin", password_stdin, "Bootstrap with the password read from stdin")
        ->excludes(pf);
    cmd->add_flag("--force", req.force,
                  "Replace a different registration under this name, or take over a machine "
                  "registered under another name");
    examples(
        cmd,
        {"gedge device add cam-1 --host 10.0.0.5 --user pi --host-key SHA256:abc...",
         "gedge device add cam-2 --host cam2.lan --user pi --accept-new --password-file ~/.pw "
         "--label site=lab",
         "gedge device add gw --host gw-alias --accept-new   # Host gw-alias from ~/.ssh/config",
         "gedge --ssh-config ./fleet.sshconfig device add cam-9 --host cam-9 --accept-new   # "
         "ProxyJump too",
         "gedge device add cam-3 --host pi@10.0.0.7:2222 --host-key SHA256:abc...",
         "gedge device add cam-4 --host cam4.lan --known-hosts ~/.ssh/known_hosts --identity "
         "~/.ssh/id_ed25519",
         "gedge device add cam-5 --host cam5.fleet.lan --known-hosts ca_hosts   # @cert-authority "
         "*.fleet.lan KEY"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      DeviceAddRequest r = req;
      for (const auto& l : labels) {
        GEDGE_TRY_ASSIGN(auto kv, parse_label(l));
        r.labels[kv.first] = kv.second;
      }
      if (!password_file.empty() || password_stdin) {
        GEDGE_TRY_ASSIGN(r.password, read_password(password_file, password_stdin));
      }
      r.timeout_s = ctx.g.timeout_s;
      r.ssh_config = ctx.g.ssh_config;
      GEDGE_TRY_ASSIGN(r.known_hosts_files, known_hosts_files(ctx, r.known_hosts_files));
      if (!r.accept_new && r.host_key.empty() && ctx.stdin_is_tty() && ctx.stderr_is_tty() &&
          !password_stdin) {
        std::string host = r.host;
        r.confirm_new_key = [host](const HostKey& k) {
          std::cerr
              << fmt::format(
                     "The host key of '{}' is {} {}.\nTrust it and register the device? [y/N] ",
                     host, k.type, k.fingerprint)
              << std::flush;
          std::string answer;
          std::getline(std::cin, answer);
          return answer == "y" || answer == "Y" || answer == "yes";
        };
      }
      GEDGE_TRY_ASSIGN(auto res, device_add(*inv, paths, r, ctx.reporter()));
      nlohmann::json j = res.device;
      j["changed"] = res.changed;
      j["bootstrapped"] = res.bootstrapped;
      j["token_issued"] = res.token_issued;
      std::string footer =
          res.changed ? fmt::format("device '{}' registered", r.name)
                      : fmt::format("device '{}' is already registered; nothing changed", r.name);
      return Outcome{View{j, {}, "", footer}, std::nullopt, std::nullopt};
    });
  }

  // ---- import ----------------------------------------------------------------------------
  {
    static DeviceImportRequest req;
    auto* cmd = noun->add_subcommand(
        "import",
        "Register the hosts of Ansible inventories (INI, YAML) or ssh_config files, in parallel");
    cmd->add_option("files", req.files, "Inventory files")->required()->option_text("FILE...");
    cmd->add_option("--format", req.format,
                    "ini, yaml or ssh-config (default: yaml for .yml/.yaml, else ini)")
        ->check(CLI::IsMember({"ini", "yaml", "ssh-config"}))
        ->option_text("FORMAT");
    cmd->add_flag("--no-connect", req.no_connect,
                  "Record the hosts without contacting them (status unknown; one transaction); "
                  "the keys --known-hosts files list for them are pinned");
    cmd->add_flag("--accept-new", req.accept_new,
                  "Trust each host's presented host key on first contact");
    cmd->add_option("--known-hosts", req.known_hosts_files,
                    "OpenSSH known_hosts file (repeatable): pins each host's key, or accepts its "
                    "host certificate from an @cert-authority listed there; a host whose key "
                    "differs, or is not certified under a CA's pattern, fails")
        ->option_text("FILE");
    examples(
        cmd,
        {"gedge device import hosts.ini --known-hosts ~/.ssh/known_hosts",
         "gedge device import hosts.ini --accept-new",
         "gedge device import inventory.yml --no-connect -o json",
         "gedge device import hosts.ini --no-connect --known-hosts ~/.ssh/known_hosts",
         "gedge device import ~/.ssh/config.d/fleet --format ssh-config --accept-new",
         "gedge device exec --group cams -- uptime   # groups come along, :children expanded"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      DeviceImportRequest r = req;
      r.timeout_s = ctx.g.timeout_s;
      r.parallel = std::min(ctx.g.parallel, 32);
      r.ssh_config = ctx.g.ssh_config;
      GEDGE_TRY_ASSIGN(r.known_hosts_files, known_hosts_files(ctx, r.known_hosts_files));
      GEDGE_TRY_ASSIGN(auto rep, device_import(*inv, paths, r, ctx.reporter()));
      const auto& s = rep.json["summary"];
      View v{rep.json,
             {{"device", "/device"},
              {"status", "/status"},
              {"host", "/host"},
              {"message", "/message"}},
             "/results",
             fmt::format("{} ok, {} failed, {} unreachable", s["ok"].get<int>(),
                         s["failed"].get<int>(), s["unreachable"].get<int>())};
      return Outcome{v, rep.error, std::nullopt};
    });
  }

  // ---- ls --------------------------------------------------------------------------------
  {
    static SelectFlags f;
    auto* cmd = noun->add_subcommand("ls", "List registered devices");
    cmd->add_option("-l,--label", f.labels,
                    "Only devices with this label (k=v; repeat: all must match)")
        ->option_text("K=V");
    cmd->add_option("--tier", f.tier, "Only devices of this tier")
        ->check(CLI::IsMember({"local", "neighbor", "cloud"}))
        ->option_text("TIER");
    cmd->add_option("-g,--group", f.groups,
                    "Only devices in this inventory group (repeat: all must match)")
        ->option_text("NAME");
    examples(cmd, {"gedge device ls", "gedge device ls --label site=lab -o json",
                   "gedge device ls --tier local", "gedge device ls --group cams"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto sel, selector(f));
      if (auto f = ctx.format(); f && *f == Format::json) {
        // Written row by row (the same bytes as rendering the list): 10 000 devices in a few
        // tens of milliseconds instead of building the whole document first.
        std::string text;
        GEDGE_TRY_ASSIGN(bool written, device_list_json(*inv, sel, text));
        if (written) return Outcome{View{}, std::nullopt, std::move(text += '\n')};
      }
      GEDGE_TRY_ASSIGN(auto list, device_list(*inv, sel));
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      if (table_mode) add_label_text(list);
      std::string footer = list.empty() ? "no devices registered" : "";
      return Outcome{View{std::move(list), kDeviceColumns, "", std::move(footer)}, std::nullopt,
                     std::nullopt};
    });
  }

  // ---- show ------------------------------------------------------------------------------
  {
    static std::string name;
    auto* cmd = noun->add_subcommand("show", "Show one device: address, host key, facts, status");
    cmd->add_option("name", name, "Device name")->required();
    examples(cmd, {"gedge device show cam-1", "gedge device show cam-1 -o json | jq .facts"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto d, device_show(*inv, name));
      return Outcome{View{d, {}, "", ""}, std::nullopt, std::nullopt};
    });
  }

  // ---- rm --------------------------------------------------------------------------------
  {
    static std::string name;
    static bool yes = false, force = false;
    auto* cmd = noun->add_subcommand(
        "rm", "Remove a device from the inventory (nothing on the device changes)");
    cmd->add_option("name", name, "Device name")->required();
    cmd->add_flag("-y,--yes", yes, "Do not ask for confirmation");
    cmd->add_flag("--force", force, "Remove even if a cluster still lists the device");
    static bool ignore_missing = false;
    add_ignore_not_found(cmd, ignore_missing);
    examples(cmd,
             {"gedge device rm cam-1 --yes", "gedge device rm cam-1 --yes --ignore-not-found"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      if (auto shown = device_show(*inv, name); !shown) {  // not_found before asking
        if (auto none = nothing_removed(ignore_missing, shown.error())) return *none;
        return std::unexpected(shown.error());
      }
      GEDGE_TRY(confirm(ctx, yes, fmt::format("remove device '{}'", name)));
      GEDGE_TRY_ASSIGN(auto clusters, cluster::clusters_of(*inv, name));  // --force: still a member
      GEDGE_TRY_ASSIGN(auto d, device_remove(*inv, paths, name, force));
      nlohmann::json j{{"removed", name}, {"device", d}};
      // Its clusters' Prometheus servers stop scraping it.
      for (const auto& c : clusters)
        if (auto p = cluster::sync_prometheus(*inv, paths, c, ctx.g.timeout_s, ctx.reporter());
            !p.is_null())
          j["prometheus"][c] = p;
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      return Outcome{View{j, {}, "", ""}, std::nullopt,
                     table_mode
                         ? std::optional<std::string>(fmt::format("device '{}' removed\n", name))
                         : std::nullopt};
    });
  }

  // ---- key -------------------------------------------------------------------------------
  {
    auto* cmd = noun->add_subcommand(
        "key", "Print gedge's public key line (for a device's authorized_keys)");
    examples(cmd, {"gedge device key >> /tmp/gedge.pub",
                   "gedge device key | ssh pi@cam-1 'cat >> ~/.ssh/authorized_keys'"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto k, read_public_key(paths));
      nlohmann::json j{{"public_key", k.public_line}, {"fingerprint", k.fingerprint}};
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      return Outcome{View{j, {}, "", ""}, std::nullopt,
                     table_mode ? std::optional<std::string>(k.public_line + "\n") : std::nullopt};
    });
  }

  // ---- rekey -----------------------------------------------------------------------------
  {
    static std::string name;
    static std::string expect;
    static bool yes = false;
    auto* cmd = noun->add_subcommand(
        "rekey", "Accept a device's changed host key after showing old and new");
    cmd->add_option("name", name, "Device name")->required();
    cmd->add_option("--host-key", expect, "Accept only if the new key has this fingerprint")
        ->option_text("SHA256:...");
    cmd->add_flag("-y,--yes", yes, "Do not ask for confirmation");
    examples(cmd, {"gedge device rekey cam-1",
                   "gedge device rekey cam-1 --host-key SHA256:abc... --yes"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto plan, device_rekey_probe(*inv, paths, name, ctx.g.timeout_s));
      nlohmann::json j{
          {"device", name},
          {"old", {{"type", plan.old_key.type}, {"fingerprint", plan.old_key.fingerprint}}},
          {"new", {{"type", plan.new_key.type}, {"fingerprint", plan.new_key.fingerprint}}},
          {"changed", plan.changed}};
      if (!plan.changed)
        return Outcome{View{j, {}, "", "host key unchanged; nothing to do"}, std::nullopt,
                       std::nullopt};
      if (!expect.empty() && expect != plan.new_key.fingerprint)
        return fail(ErrorCode::host_key,
                    fmt::format("device '{}' presents {} {}, not the expected {}", name,
                                plan.new_key.type, plan.new_key.fingerprint, expect));
      std::cerr << fmt::format("device '{}' host key changed:\n  old: {} {}\n  new: {} {}\n", name,
                               plan.old_key.type, plan.old_key.fingerprint, plan.new_key.type,
                               plan.new_key.fingerprint);
      GEDGE_TRY(
          confirm(ctx, yes || !expect.empty(), fmt::format("pin the new host key of '{}'", name)));
      GEDGE_TRY(device_rekey_apply(*inv, paths, plan, ctx.g.timeout_s));
      return Outcome{
          View{j,
               {},
               "",
               "new host key pinned; run 'gedge device check' to verify the device token"},
          std::nullopt, std::nullopt};
    });
  }

  // ---- check -----------------------------------------------------------------------------
  {
    static SelectFlags f;
    auto* cmd = noun->add_subcommand(
        "check", "Connect in parallel: verify host key and token, refresh facts, measure RTT");
    cmd->add_option("names", f.names, "Device names")->option_text("NAME...");
    add_select_flags(cmd, f);
    examples(cmd, {"gedge device check --all", "gedge device check cam-1 cam-2 -o json",
                   "gedge device check --label site=lab"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto sel, selector(f));
      FanOutRequest req{std::move(sel), ctx.g.timeout_s, ctx.g.parallel};
      GEDGE_TRY_ASSIGN(auto rep, device_check(*inv, paths, req, ctx.reporter()));
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      nlohmann::json data = rep.json;
      if (table_mode)
        for (auto& r : data["results"]) r["rtt_text"] = round_ms(r["rtt_ms"]);
      const auto& s = rep.json["summary"];
      View v{data,
             {{"device", "/device"},
              {"status", "/status"},
              {"rtt_ms", "/rtt_text"},
              {"last_seen", "/last_seen"},
              {"message", "/message"}},
             "/results",
             fmt::format("{} ok, {} failed, {} unreachable", s["ok"].get<int>(),
                         s["failed"].get<int>(), s["unreachable"].get<int>())};
      return Outcome{v, rep.error, std::nullopt};
    });
  }

  // ---- exec ------------------------------------------------------------------------------
  {
    static SelectFlags f;
    static std::vector<std::string> rest;
    static bool sudo = false;
    auto* cmd = noun->add_subcommand("exec", "Run a command on many devices at once");
    // CLI11 hands what follows `--` either to this positional or (once a name filled it) up to
    // the noun's extras; the command itself comes from main, which splits argv at the first "--".
    cmd->add_option("names", rest, "Device names, then -- and the command")
        ->option_text("NAME... -- CMD...");
    add_select_flags(cmd, f);
    cmd->add_flag("--sudo", sudo, "Run the command with sudo -n (passwordless sudo on the device)");
    examples(cmd,
             {"gedge device exec --all -- uptime", "gedge device exec cam-1 cam-2 -- df -h /",
              "gedge device exec --label site=lab --sudo -o json -- systemctl is-active podman"});
    on_run(cmd, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      auto command = ctx.g.after_dashdash;
      if (command.empty())
        return fail(ErrorCode::usage, "no command given",
                    "put the command after --: gedge device exec --all -- uptime");
      SelectFlags sf = f;
      sf.names = rest;
      if (sf.names.size() >= command.size() &&
          std::equal(command.begin(), command.end(),
                     sf.names.end() - static_cast<long>(command.size())))
        sf.names.resize(sf.names.size() - command.size());
      GEDGE_TRY_ASSIGN(auto sel, selector(sf));
      FanOutRequest req{std::move(sel), ctx.g.timeout_s, ctx.g.parallel};
      GEDGE_TRY_ASSIGN(auto rep, device_exec(*inv, paths, req, command, sudo, ctx.reporter()));
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      std::optional<std::string> raw;
      if (table_mode) {
        // One block per device, each printed whole: outputs never interleave.
        std::string out;
        for (const auto& r : rep.json["results"]) {
          std::string head = r["exit_code"].is_number()
                                 ? fmt::format("exit {}", r["exit_code"].get<int>())
                                 : r["status"].get<std::string>();
          out += fmt::format("=== {} ({}, {} ms)\n", r["device"].get<std::string>(), head,
                             r["duration_ms"].dump());
          out += r["stdout"].get<std::string>();
          if (!out.empty() && out.back() != '\n') out += '\n';
          std::string err = r["stderr"].get<std::string>();
          if (err.empty() && r["exit_code"].is_null()) err = r.value("message", "");
          if (!err.empty()) {
            for (size_t p = 0; p < err.size();) {
              size_t nl = err.find('\n', p);
              out +=
                  "stderr: " + err.substr(p, nl == std::string::npos ? std::string::npos : nl - p) +
                  "\n";
              p = nl == std::string::npos ? err.size() : nl + 1;
            }
          }
        }
        const auto& s = rep.json["summary"];
        out += fmt::format("{} ok, {} failed, {} unreachable\n", s["ok"].get<int>(),
                           s["failed"].get<int>(), s["unreachable"].get<int>());
        raw = out;
      }
      return Outcome{View{rep.json, {}, "", ""}, rep.error, raw};
    });
  }
  // After `exec ... NAME -- CMD`, CLI11 passes CMD up to the noun: accept it there (set after the
  // verbs exist so they do not inherit it); every other verb still rejects stray arguments.
  noun->allow_extras();
  noun->parse_complete_callback([noun] {
    if (noun->remaining_size() == 0) return;
    auto verbs = noun->get_subcommands();
    if (verbs.empty() || verbs.front()->get_name() != "exec")
      throw CLI::ExtrasError(noun->get_name(), noun->remaining());
  });
}

}  // namespace gedge::cli
