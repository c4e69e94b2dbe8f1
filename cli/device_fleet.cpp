// gedge device ls | show | rm | key | rekey | check | exec: the verbs on registered devices (add,
// import: device.cpp). Flags -> request -> libgedge (gedge/device.hpp) -> View.
#include <fmt/format.h>

#include <iostream>

#include "app.hpp"
#include "gedge/cluster.hpp"
#include "gedge/device.hpp"
#include "gedge/device_views.hpp"
#include "gedge/keys.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

namespace {

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

const std::vector<Column> kDeviceColumns = {
    {"name", "/name"},       {"host", "/host"},       {"user", "/user"},
    {"tier", "/tier"},       {"status", "/status"},   {"rtt_ms", "/rtt_ms"},
    {"arch", "/facts/arch"}, {"cpus", "/facts/cpus"}, {"labels", "/labels_text"}};

}  // namespace

void register_device_fleet(CLI::App* noun, Ctx& ctx) {
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
      if (table_mode) add_labels_text(list);
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
      GEDGE_TRY_ASSIGN(auto j, cluster::remove_device(*inv, paths, name, force, ctx.g.timeout_s,
                                                      ctx.reporter()));
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
      nlohmann::json j = rekey_json(plan);
      if (!plan.changed)
        return Outcome{View{j, {}, "", "host key unchanged; nothing to do"}, std::nullopt,
                       std::nullopt};
      GEDGE_TRY(rekey_expect(plan, expect));
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
      if (table_mode) add_rtt_text(data);
      View v{data,
             {{"device", "/device"},
              {"status", "/status"},
              {"rtt_ms", "/rtt_text"},
              {"last_seen", "/last_seen"},
              {"message", "/message"}},
             "/results",
             fan_out_summary(rep.json)};
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
      sf.names = exec_device_names(rest, command);
      GEDGE_TRY_ASSIGN(auto sel, selector(sf));
      FanOutRequest req{std::move(sel), ctx.g.timeout_s, ctx.g.parallel};
      GEDGE_TRY_ASSIGN(auto rep, device_exec(*inv, paths, req, command, sudo, ctx.reporter()));
      bool table_mode = ctx.output_raw().empty() || ctx.output_raw() == "table";
      // One block per device, each printed whole: outputs never interleave.
      std::optional<std::string> raw;
      if (table_mode) raw = exec_text(rep.json);
      return Outcome{View{rep.json, {}, "", ""}, rep.error, raw};
    });
  }
}

}  // namespace gedge::cli
