// gedge tune show|plan|pin|bench: bind flags to a topology source and a plan request, call the
// topo module, render. Remote parts (a device's topology, a container pin) go through the SSH
// layer; the pins table records what gedge pinned where.
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>

#include "app.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"
#include "gedge/topo.hpp"

namespace gedge::cli {

namespace {

struct SourceFlags {
  std::string topology;
  std::string device;
  bool live = false;
};

struct PlanFlags {
  int cores = 0;
  std::string cpuset;
  std::string near;
  int numa = -1;
  bool no_smt = false;
  std::string exclude;
  std::string policy = "compact";
  bool membind = false;
};

void add_source_flags(CLI::App* cmd, SourceFlags& s) {
  cmd->add_option("--topology", s.topology,
                  "Topology to use instead of this machine: an hwloc XML file or a synthetic "
                  "description such as 'pack:2 numa:2 core:8 pu:2'")
      ->option_text("FILE|SYNTHETIC");
  cmd->add_option("--device", s.device,
                  "A registered device: its stored topology (or fetched over SSH)")
      ->option_text("NAME");
  cmd->add_flag("--live", s.live,
                "With --device: fetch the topology over SSH now (lstopo-no-graphics)");
}

void add_plan_flags(CLI::App* cmd, PlanFlags& f, bool with_cpuset) {
  cmd->add_option("--cores", f.cores, "Number of cores to choose")
      ->check(CLI::Range(1, 1 << 20))
      ->option_text("N");
  if (with_cpuset)
    cmd->add_option("--cpuset", f.cpuset,
                    "Explicit PUs (OS indexes) instead of --cores, e.g. '2-5,8'")
        ->option_text("LIST");
  cmd->add_option(
         "--near", f.near,
         "Cores local to an I/O device: gpuN, cuda0, nic:NAME, pci:BUS, or any OS device name")
      ->option_text("DEV");
  cmd->add_option("--numa", f.numa, "Cores and memory of NUMA node K (OS index)")
      ->check(CLI::Range(0, 1 << 20))
      ->option_text("K");
  cmd->add_flag("--no-smt", f.no_smt, "Whole cores only, one PU each");
  cmd->add_option("--exclude", f.exclude, "PUs (OS indexes) never to use, e.g. '0,1'")
      ->option_text("LIST");
  cmd->add_option("--policy", f.policy,
                  "compact (smallest object holding them) or scatter (across NUMA nodes)")
      ->check(CLI::IsMember({"compact", "scatter"}))
      ->option_text("POLICY");
}

Result<std::unique_ptr<SshSession>> connect_device(Ctx& ctx, const std::string& device) {
  GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
  GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
  GEDGE_TRY_ASSIGN(auto target, device_target(*inv, paths, device));
  return SshSession::connect(target, default_ssh_options(paths, ctx.g.timeout_s));
}

// The device's topology over SSH: lstopo's XML, or, on a device without hwloc, a flat synthetic
// topology from /sys (online CPUs as single-PU cores over the online NUMA nodes), labelled so.
Result<topo::TopologySource> fetch_device_topology(Ctx& ctx, const std::string& device) {
  GEDGE_TRY_ASSIGN(auto session, connect_device(ctx, device));
  GEDGE_TRY_ASSIGN(auto r, session->exec({"lstopo-no-graphics", "--of", "xml", "-"}));
  if (r.exit_code == 0)
    return topo::TopologySource{topo::TopologySource::Kind::xml_buffer, r.out,
                                fmt::format("device {}", device)};
  GEDGE_TRY_ASSIGN(auto cpus_r, session->exec({"cat", "/sys/devices/system/cpu/online"}));
  GEDGE_TRY_ASSIGN(auto nodes_r, session->exec({"cat", "/sys/devices/system/node/online"}));
  auto trim = [](std::string x) {
    while (!x.empty() && (x.back() == '\n' || x.back() == ' ')) x.pop_back();
    return x;
  };
  auto cpus = cpus_r.exit_code == 0 ? topo::parse_list(trim(cpus_r.out)) : Result<topo::IndexSet>{};
  auto nodes = nodes_r.exit_code == 0 ? topo::parse_list(trim(nodes_r.out))
                                      : Result<topo::IndexSet>{topo::IndexSet{0}};
  auto contiguous = [](const topo::IndexSet& x) {
    return !x.empty() && *x.begin() == 0 && *x.rbegin() + 1 == x.size();
  };
  if (!cpus || !nodes || !contiguous(*cpus) || !contiguous(*nodes) ||
      cpus->size() % nodes->size() != 0)
    return fail(
        ErrorCode::failure, fmt::format("cannot read the topology of device '{}'", device),
        "install hwloc on the device (Debian: apt install hwloc-nox), then 'gedge device check'");
  ctx.reporter().warn(
      fmt::format("device '{}' has no lstopo-no-graphics: using its online CPUs and NUMA nodes "
                  "from /sys (no cache, SMT or I/O information)",
                  device));
  std::string syn = fmt::format("numa:{} pu:{}", nodes->size(), cpus->size() / nodes->size());
  return topo::TopologySource{topo::TopologySource::Kind::synthetic, syn,
                              fmt::format("device {} (from /sys: {})", device, syn)};
}

Result<topo::Topology> load_source(Ctx& ctx, const SourceFlags& s) {
  if (!s.topology.empty() && !s.device.empty())
    return fail(ErrorCode::usage, "--topology and --device are exclusive");
  if (!s.topology.empty()) return topo::Topology::load(topo::TopologySource::from_arg(s.topology));
  if (s.device.empty()) return topo::Topology::load({});
  GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
  GEDGE_TRY_ASSIGN(std::string xml, DeviceStore(*inv).topology_xml(s.device));
  if (!s.live && !xml.empty())
    return topo::Topology::load(
        {topo::TopologySource::Kind::xml_buffer, xml, fmt::format("device {}", s.device)});
  ctx.reporter().info(fmt::format("fetching the topology of '{}' over SSH", s.device));
  GEDGE_TRY_ASSIGN(auto fetched, fetch_device_topology(ctx, s.device));
  return topo::Topology::load(std::move(fetched));
}

// Work gedge already pinned on a device (the pins table), except `skip_owner` (being re-pinned).
Result<std::vector<std::pair<std::string, topo::IndexSet>>> device_pins(
    Ctx& ctx, const std::string& device, const std::string& skip_owner) {
  std::vector<std::pair<std::string, topo::IndexSet>> out;
  if (device.empty()) return out;
  GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
  GEDGE_TRY_ASSIGN(auto pins, PinStore(*inv).on_device(device));
  for (const auto& pin : pins) {
    if (pin.owner == skip_owner) continue;
    if (auto set = topo::parse_list(pin.cpuset)) out.emplace_back(pin.owner, *set);
  }
  return out;
}

Result<topo::PlanRequest> to_request(const PlanFlags& f) {
  topo::PlanRequest req;
  if (f.cores > 0 && !f.cpuset.empty())
    return fail(ErrorCode::usage, "--cores and --cpuset are exclusive");
  if (f.cores <= 0 && f.cpuset.empty())
    return fail(ErrorCode::usage, "give --cores N or --cpuset LIST");
  req.cores = f.cores;
  if (!f.cpuset.empty()) req.cpuset = f.cpuset;
  req.near = f.near;
  if (f.numa >= 0) req.numa = static_cast<unsigned>(f.numa);
  req.no_smt = f.no_smt;
  GEDGE_TRY_ASSIGN(req.exclude, topo::parse_list(f.exclude));
  GEDGE_TRY_ASSIGN(req.policy, topo::parse_policy(f.policy));
  return req;
}

View plan_view(nlohmann::json data) {
  std::string footer = fmt::format("cpuset {}  memory nodes {}", data.value("cpuset", ""),
                                   data.value("memory_nodes", ""));
  return View{std::move(data),
              {{"role", "/role"},
               {"type", "/type"},
               {"l#", "/logical"},
               {"p#", "/os"},
               {"cpuset", "/cpuset"},
               {"pus", "/pus"}},
              "/objects",
              footer};
}

}  // namespace

void register_tune(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("tune", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "tune") cmd->description(noun.summary);
  cmd->require_subcommand(1);

  // ---- show ---------------------------------------------------------------------------------
  {
    static SourceFlags src;
    auto* show = cmd->add_subcommand(
        "show", "Show packages, NUMA nodes, cores, PUs, caches and I/O devices");
    add_source_flags(show, src);
    examples(show, {"gedge tune show", "gedge tune show -o json | jq .io_devices",
                    "gedge tune show --topology 'pack:2 numa:2 core:8 pu:2'",
                    "gedge tune show --topology lstopo.xml", "gedge tune show --device edge1"});
    on_run(show, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto t, load_source(ctx, src));
      auto j = t.describe();
      std::string footer =
          fmt::format("{}: {} packages, {} NUMA nodes, {} cores, {} PUs; PUs {} (allowed {})",
                      j["source"].get<std::string>(), j["counts"]["packages"].get<int>(),
                      j["counts"]["numa_nodes"].get<int>(), j["counts"]["cores"].get<int>(),
                      j["counts"]["pus"].get<int>(), j["cpuset"].get<std::string>(),
                      j["allowed_cpuset"].get<std::string>());
      View v{j,
             {{"type", "/type"},
              {"l#", "/logical"},
              {"p#", "/os"},
              {"cpuset", "/cpuset"},
              {"detail", "/detail"}},
             "/objects",
             footer};
      return Outcome{v, std::nullopt, std::nullopt};
    });
  }

  // ---- plan ---------------------------------------------------------------------------------
  {
    static SourceFlags src;
    static PlanFlags pf;
    static std::string memory = "1Gi";
    auto* pl = cmd->add_subcommand(
        "plan", "Choose cores and memory nodes for a workload (prints, changes nothing)");
    add_source_flags(pl, src);
    add_plan_flags(pl, pf, true);
    pl->add_option("--memory", memory, "Memory request for -o k8s")->option_text("QTY");
    pl->footer("");
    examples(pl, {"gedge tune plan --cores 2",
                  "gedge tune plan --cores 4 --near gpu0 --no-smt --topology lstopo.xml",
                  "gedge tune plan --cores 8 --policy scatter --topology 'pack:2 numa:2 core:8 "
                  "pu:2' -o json",
                  "gedge tune plan --cores 2 --device edge1 -o podman",
                  "gedge tune plan --cores 4 --numa 1 -o systemd   (also -o k8s)"});
    on_run(pl, ctx, [&ctx]() -> Result<Outcome> {
      std::string out = ctx.output_raw();
      bool custom = out == "podman" || out == "k8s" || out == "systemd";
      if (!custom) GEDGE_TRY(ctx.format());
      GEDGE_TRY_ASSIGN(auto req, to_request(pf));
      GEDGE_TRY_ASSIGN(auto t, load_source(ctx, src));
      GEDGE_TRY_ASSIGN(req.pinned, device_pins(ctx, src.device, ""));
      GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
      if (out == "podman") return Outcome{{}, std::nullopt, topo::render_podman(p)};
      if (out == "k8s") return Outcome{{}, std::nullopt, topo::render_k8s(p, memory)};
      if (out == "systemd") return Outcome{{}, std::nullopt, topo::render_systemd(p)};
      auto j = p.to_json();
      j["topology"] = t.summary();
      return Outcome{plan_view(j), std::nullopt, std::nullopt};
    });
  }

  // ---- pin ----------------------------------------------------------------------------------
  {
    static SourceFlags src;
    static PlanFlags pf;
    static int pid = 0;
    static std::string container;
    static bool dry_run = false;
    static std::vector<std::string> command;
    auto* pin = cmd->add_subcommand(
        "pin", "Bind a command, a running process or a device's container, and verify it");
    add_plan_flags(pin, pf, true);
    pin->add_option("--pid", pid, "Rebind this running process (all its threads)")
        ->option_text("PID");
    pin->add_option("--device", src.device, "With --container: the registered device running it")
        ->option_text("NAME");
    pin->add_option("--container", container,
                    "A podman container on --device: podman update --cpuset-cpus/--cpuset-mems")
        ->option_text("NAME");
    pin->add_flag("--membind", pf.membind, "With -- CMD: bind memory to the plan's NUMA nodes too");
    pin->add_flag("--dry-run", dry_run, "Print the plan and what would run; change nothing");
    pin->add_option("command", command, "-- CMD ARGS...: bind, then exec CMD");
    examples(pin, {"gedge tune pin --cpuset 1 -- ./server --port 8080",
                   "gedge tune pin --cores 1 --no-smt --membind -- python3 infer.py",
                   "gedge tune pin --cores 2 --pid 4242 -o json",
                   "gedge tune pin --cores 2 --device edge1 --container detector -o json"});
    on_run(pin, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY(ctx.format());
      if (command.empty()) command = ctx.g.after_dashdash;  // main splits argv at "--"
      int targets = (pid > 0) + (!container.empty()) + (!command.empty());
      if (targets != 1)
        return fail(ErrorCode::usage,
                    "give exactly one target: -- CMD, --pid PID, or --device D --container NAME");
      if (!container.empty() && src.device.empty())
        return fail(ErrorCode::usage, "--container needs --device");
      if (container.empty() && !src.device.empty())
        return fail(ErrorCode::usage, "--device needs --container");
      GEDGE_TRY_ASSIGN(auto req, to_request(pf));

      if (!container.empty()) {
        GEDGE_TRY_ASSIGN(auto t, load_source(ctx, src));
        GEDGE_TRY_ASSIGN(req.pinned, device_pins(ctx, src.device, container));
        GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
        auto j = p.to_json();
        j["device"] = src.device;
        j["container"] = container;
        if (dry_run) {
          j["dry_run"] = true;
          j["would_run"] = topo::podman_update_argv(p, container);
          return Outcome{plan_view(j), std::nullopt, std::nullopt};
        }
        GEDGE_TRY_ASSIGN(auto session, connect_device(ctx, src.device));
        topo::RemoteRun run =
            [&](const std::vector<std::string>& argv) -> Result<topo::RemoteOutput> {
          GEDGE_TRY_ASSIGN(auto r, session->exec(argv));
          return topo::RemoteOutput{r.exit_code, r.out, r.err};
        };
        GEDGE_TRY_ASSIGN(auto res, topo::pin_container(p, container, run));
        GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
        GEDGE_TRY(PinStore(*inv).put(
            {src.device, container, topo::format_list(p.cpus), topo::format_list(p.memory_nodes)}));
        log_line("info", fmt::format("tune pin device={} container={} cpuset={} mems={}",
                                     src.device, container, topo::format_list(p.cpus),
                                     topo::format_list(p.memory_nodes)));
        j["applied"] = res["applied"];
        j["recorded"] = true;
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }

      GEDGE_TRY_ASSIGN(auto t, topo::Topology::load({}));
      GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
      auto j = p.to_json();
      if (pid > 0) {
        j["pid"] = pid;
        if (dry_run) {
          j["dry_run"] = true;
          return Outcome{plan_view(j), std::nullopt, std::nullopt};
        }
        GEDGE_TRY_ASSIGN(auto a, topo::bind_pid(t, p, static_cast<pid_t>(pid)));
        j["applied"] = a.to_json();
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }

      // -- CMD: bind this process, verify, then become CMD. stdout belongs to CMD, so the record
      // of what was applied goes to stderr (one JSON line under -o json).
      j["command"] = command;
      if (dry_run) {
        j["dry_run"] = true;
        return Outcome{plan_view(j), std::nullopt, std::nullopt};
      }
      GEDGE_TRY_ASSIGN(auto a, topo::bind_self(t, p, pf.membind));
      j["applied"] = a.to_json();
      j["pid"] = ::getpid();
      log_line("info", fmt::format("tune pin exec pid={} cpuset={} cmd={}", ::getpid(),
                                   topo::format_list(p.cpus), command[0]));
      GEDGE_TRY_ASSIGN(auto f, ctx.format());
      if (f == Format::json)
        std::cerr << j.dump() << "\n";
      else
        ctx.reporter().info(fmt::format(
            "pinned to CPUs {} (memory nodes {}{}), verified; exec {}", topo::format_list(a.cpus),
            topo::format_list(p.memory_nodes), pf.membind ? ", bound" : "", command[0]));
      std::cerr << std::flush;
      std::cout << std::flush;
      std::vector<char*> args;
      for (auto& s : command) args.push_back(s.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      return fail(errno == ENOENT ? ErrorCode::not_found : ErrorCode::failure,
                  fmt::format("cannot run '{}': {}", command[0], std::strerror(errno)),
                  "check the command and PATH");
    });
  }

  // ---- bench --------------------------------------------------------------------------------
  {
    static PlanFlags pf;
    static int runs = 10;
    static int warmup = 1;
    static std::vector<std::string> command;
    auto* b = cmd->add_subcommand(
        "bench", "A/B benchmark: CMD unpinned vs pinned, interleaved, medians and p95");
    add_plan_flags(b, pf, true);
    b->add_option("--runs", runs, "Runs per side")->check(CLI::Range(2, 10000))->option_text("N");
    b->add_option("--warmup", warmup, "Unmeasured runs per side first")
        ->check(CLI::Range(0, 100))
        ->option_text("N");
    b->add_flag("--membind", pf.membind,
                "Bind the pinned runs' memory to the plan's NUMA nodes too");
    b->add_option("command", command, "-- CMD ARGS...: the workload (its output is discarded)");
    examples(
        b,
        {"gedge tune bench --runs 20 --cpuset 1 -- ./membw 256",
         "gedge tune bench --cores 4 --near gpu0 --no-smt -o json -- python3 infer.py --batch 8"});
    on_run(b, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY(ctx.format());
      if (command.empty()) command = ctx.g.after_dashdash;  // main splits argv at "--"
      if (command.empty())
        return fail(ErrorCode::usage, "no command to benchmark",
                    "usage: gedge tune bench [flags] -- CMD ARGS...");
      GEDGE_TRY_ASSIGN(auto req, to_request(pf));
      GEDGE_TRY_ASSIGN(auto t, topo::Topology::load({}));
      GEDGE_TRY_ASSIGN(auto p, topo::plan(t, req));
      topo::BenchRequest br{command, runs, warmup, t.allowed_pus(), p, pf.membind};
      GEDGE_TRY_ASSIGN(auto r, topo::bench(br, ctx.reporter()));
      r["plan"] = p.to_json();
      r["topology"] = t.summary();
      nlohmann::json rows = nlohmann::json::array();
      for (const char* side : {"unpinned", "pinned"})
        rows.push_back(
            {{"side", side},
             {"cpuset", side == std::string("pinned") ? p.to_json()["cpuset"]
                                                      : nlohmann::json(r["baseline_cpuset"])},
             {"median_s", fmt::format("{:.4f}", r[side]["median_s"].get<double>())},
             {"p95_s", fmt::format("{:.4f}", r[side]["p95_s"].get<double>())}});
      r["table"] = rows;
      std::string footer =
          fmt::format("speedup {:.3f}x (95% CI {:.3f}-{:.3f}) over {} interleaved runs per side",
                      r["speedup"].get<double>(), r["speedup_ci95"][0].get<double>(),
                      r["speedup_ci95"][1].get<double>(), runs);
      View v{r,
             {{"side", "/side"},
              {"cpuset", "/cpuset"},
              {"median s", "/median_s"},
              {"p95 s", "/p95_s"}},
             "/table",
             footer};
      return Outcome{v, std::nullopt, std::nullopt};
    });
  }
}

}  // namespace gedge::cli
