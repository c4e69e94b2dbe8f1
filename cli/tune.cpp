// gedge tune show|plan|pin|bench: bind flags to a topology source and a plan request, call the
// topo module, render. Remote parts (a device's topology, a container pin) go through the SSH
// layer; the pins table records what gedge pinned where. pin and bench: tune_pin.cpp.
#include "tune.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <iostream>

namespace gedge::cli {

namespace tune {

namespace {

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

}  // namespace

void add_plan_flags(CLI::App* cmd, topo::PlanFlags& f, bool with_cpuset) {
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

Result<topo::Topology> load_source(Ctx& ctx, const SourceFlags& s) {
  if (s.device.empty())  // no inventory needed: a file, or this machine
    return topo::Topology::load(s.topology.empty() ? topo::TopologySource{}
                                                   : topo::TopologySource::from_arg(s.topology));
  GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
  GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
  return svc::load_topology(*inv, paths, {s.topology, s.device, s.live, ctx.g.timeout_s},
                            ctx.reporter());
}

Result<std::vector<std::pair<std::string, topo::IndexSet>>> device_pins(
    Ctx& ctx, const std::string& device, const std::string& skip_owner) {
  if (device.empty()) return std::vector<std::pair<std::string, topo::IndexSet>>{};
  GEDGE_TRY_ASSIGN(Inventory * inv, ctx.inventory());
  return svc::recorded_pins(*inv, device, skip_owner);
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

}  // namespace tune

void register_tune(CLI::App& app, Ctx& ctx) {
  using namespace tune;
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
    static topo::PlanFlags pf;
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
      GEDGE_TRY_ASSIGN(auto req, topo::plan_request(pf));
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

  register_pin(cmd, ctx);
  register_bench(cmd, ctx);
}

}  // namespace gedge::cli
