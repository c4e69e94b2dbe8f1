// gedge device: add | import (ls, show, rm, key, rekey, check, exec: device_fleet.cpp). Binds flags
// into request structs and hands them to libgedge (gedge/device.hpp); no business logic here.
#include "gedge/device.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "app.hpp"
#include "gedge/config.hpp"
#include "gedge/device_import.hpp"
#include "gedge/device_views.hpp"
#include "gedge/document.hpp"

namespace gedge::cli {

namespace {

// --known-hosts, else the config's known_hosts_files (checked when the config was loaded).
Result<std::vector<std::string>> known_hosts_files(Ctx& ctx, const std::vector<std::string>& flag) {
  if (!flag.empty()) return flag;
  GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
  GEDGE_TRY_ASSIGN(auto cfg, load_config(paths.config_file));
  return cfg.known_hosts_files;
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

}  // namespace

// ls, show, rm, key, rekey, check and exec (device_fleet.cpp).
void register_device_fleet(CLI::App* noun, Ctx& ctx);

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
      return Outcome{View{device_add_json(res), {}, "", device_add_summary(res, r.name)},
                     std::nullopt, std::nullopt};
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
      View v{rep.json,
             {{"device", "/device"},
              {"status", "/status"},
              {"host", "/host"},
              {"message", "/message"}},
             "/results",
             fan_out_summary(rep.json)};
      return Outcome{v, rep.error, std::nullopt};
    });
  }

  register_device_fleet(noun, ctx);

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
