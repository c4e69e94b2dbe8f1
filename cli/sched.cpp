// gedge sched: place | probe | submit | run | ls | cancel. Binds flags into sched::Request and
// hands them to libgedge (gedge/sched.hpp); placement itself is pure and lives there.
#include "gedge/sched.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "app.hpp"
#include "gedge/device.hpp"
#include "gedge/manifest.hpp"
#include "gedge/svc.hpp"

namespace gedge::cli {

namespace {

struct PlaceFlags {
  std::string file;
  std::string state;
  bool allow_unknown_kinds = false;
  std::string request;  // GS-Scheduler request/options JSON
  sched::RequestFlags r;
};

void add_place_flags(CLI::App* cmd, PlaceFlags& f) {
  cmd->add_option("FILE", f.file,
                  "Service or pipeline file, Kubernetes manifests (YAML stream, JSON, List) or a "
                  "directory of them")
      ->required();
  cmd->add_option(
         "--policy", f.r.policy,
         "low-latency | least-allocated | most-allocated | select-clusters | node | pipeline "
         "(GS-Scheduler's GLowLatencyPriority, GMostRequestedPriority, GSelectedCluster too)")
      ->option_text("POLICY")
      ->default_str("pipeline");
  cmd->add_option("--from", f.r.from,
                  "Where the data comes from (device; overrides the file's source:)")
      ->option_text("DEVICE");
  cmd->add_option("--state", f.state,
                  "Offline world (schemas/sched-state.schema.json) instead of the inventory")
      ->option_text("FILE");
  cmd->add_option(
         "--clusters", f.r.clusters,
         R"(Ordered cluster levels: JSON '["c1", ["c2", "c3"]]', Python "['c1', ['c2', 'c3']]" or [c1,[c2,c3]])")
      ->option_text("LIST");
  cmd->add_option("--node", f.r.node, "For --policy node: the node, as CLUSTER/NODE")
      ->option_text("C/N");
  cmd->add_option("--rank", f.r.rank, "Secondary policy ranking a nested level (select-clusters)")
      ->option_text("POLICY")
      ->default_str("low-latency");
  cmd->add_option("--weights", f.r.weights,
                  "least/most-allocated weights, e.g. cpu=1,memory=1,gpu=200")
      ->option_text("K=V,...");
  cmd->add_option(
         "--request", f.request,
         "GS-Scheduler request options (JSON: priority, option.mode, option.parameters) as flags")
      ->option_text("FILE");
  cmd->add_flag("--allow-unknown-kinds", f.allow_unknown_kinds,
                "Pass Kubernetes kinds gedge does not know through");
}

Result<manifest::Input> load_input(PlaceFlags& f, const CLI::App* cmd) {
  return sched::load_input(f.file, f.allow_unknown_kinds, f.request,
                           cmd->get_option("--policy")->count() > 0, f.r);
}

Result<sched::World> load_world(Ctx& ctx, const std::string& state) {
  if (!state.empty()) return sched::read_state(state);
  GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
  return sched::world_from_inventory(*inv);
}

// The table view of a placement: one row per stage, the E2E and (with --explain) each stage's
// feasibility line and its top-k ranked candidates, rendered from the JSON's "explain".
View placement_view(const sched::Placement& p, const nlohmann::json& data, bool explain, int top) {
  const auto& e2e = data["e2e_ms"];
  std::string footer = fmt::format(
      "e2e {} ms (policy {}{})", e2e.is_number() ? fmt::format("{:.3f}", e2e.get<double>()) : "-",
      sched::policy_name(p.policy), p.method.empty() ? "" : ", method " + p.method);
  if (!p.e2e_note.empty()) footer += "\nnote: " + p.e2e_note;
  if (explain && data.contains("explain"))
    footer += "\n" + sched::explain_text(data["explain"], top);
  return View{data,
              {{"stage", "/stage"},
               {"cluster", "/cluster"},
               {"node", "/node"},
               {"gpu", "/gpu"},
               {"score", "/score"},
               {"compute_ms", "/terms/compute_ms"},
               {"link_ms", "/terms/link_ms"},
               {"transfer_ms", "/terms/transfer_ms"}},
              "/placements",
              footer};
}

View requests_view(const nlohmann::json& rows, std::string footer = "") {
  return View{rows,
              {{"id", "/id"},
               {"state", "/state"},
               {"policy", "/policy"},
               {"priority", "/priority"},
               {"attempts", "/attempts"},
               {"error", "/error"},
               {"updated", "/updated_at"}},
              "",
              std::move(footer)};
}

}  // namespace

// cli/svc.cpp: deploys a file with a request (shared by svc deploy and sched place --apply).
Result<Outcome> run_deploy(Ctx& ctx, const std::string& file, svc::DeployRequest req,
                           bool allow_unknown_kinds);

void register_sched(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("sched", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "sched") cmd->description(noun.summary);
  cmd->require_subcommand(1);

  // place
  static PlaceFlags pf;
  static bool apply = false;
  static std::string apply_cluster;
  auto* place =
      cmd->add_subcommand("place", "Decide where each stage of a service or pipeline runs");
  add_place_flags(place, pf);
  place->add_flag("--explain", pf.r.explain,
                  "Every candidate's reason or terms; top-k per stage in the table");
  place->add_option("--top", pf.r.top, "Candidates shown per stage with --explain (table)")
      ->default_str("5");
  place->add_flag("--apply", apply, "Deploy the placement with 'gedge svc deploy' (one cluster)");
  place->add_option("--cluster", apply_cluster, "With --apply: the cluster to deploy to")
      ->option_text("CLUSTER");
  examples(
      place,
      {"gedge sched place yolo.yaml --state world.json -o json",
       "gedge sched place yolo.yaml --policy low-latency --from cam-1 --explain",
       R"(gedge sched place web.yaml --policy select-clusters --clusters '["edge-a", ["edge-b", "cloud"]]' --from cam-1)",
       "gedge sched place web.yaml --policy node --node edge-a/n1"});
  on_run(place, ctx, [&ctx, place]() -> Result<Outcome> {
    if (apply && !pf.state.empty())
      return fail(ErrorCode::usage,
                  "--apply deploys to the inventory's clusters, not to a --state world");
    GEDGE_TRY_ASSIGN(auto in, load_input(pf, place));
    GEDGE_TRY_ASSIGN(auto wl, sched::workload_from(in));
    GEDGE_TRY_ASSIGN(auto req, sched::build_request(pf.r));
    GEDGE_TRY_ASSIGN(auto world, load_world(ctx, pf.state));
    auto placed = sched::place(world, wl, req);
    if (!placed && placed.error().code == ErrorCode::failure && pf.r.explain) {
      // Nothing fits: exactly when the operator needs the explanation, every node's every reason.
      auto why = sched::explain_unplaced(world, wl, req);
      View v{why,
             {{"stage", "/stage"},
              {"cluster", "/cluster"},
              {"node", "/node"},
              {"fits", "/fits"},
              {"reasons", "/reasons"}},
             "",
             sched::explain_text(why, 0)};
      return Outcome{std::move(v).with_rows(sched::unplaced_rows(why)), placed.error(),
                     std::nullopt};
    }
    GEDGE_TRY_ASSIGN(auto p, std::move(placed));
    auto data = sched::to_json(p);
    if (apply) {
      // Every stage must land on one cluster: the one --cluster names, or the only one used.
      GEDGE_TRY_ASSIGN(auto target, sched::apply_cluster(data, apply_cluster));
      svc::DeployRequest dr;
      dr.cluster = target;
      dr.placement = data;
      GEDGE_TRY_ASSIGN(auto dep, run_deploy(ctx, pf.file, dr, pf.allow_unknown_kinds));
      nlohmann::json both{{"placement", data}, {"deploy", dep.view.data}};
      View v = placement_view(p, data, pf.r.explain, pf.r.top);
      v.data = both;
      v.rows = "/placement/placements";
      v.footer += "\n" + dep.view.footer;
      return Outcome{v, dep.error, std::nullopt};
    }
    return Outcome{placement_view(p, data, pf.r.explain, pf.r.top), std::nullopt, std::nullopt};
  });

  // probe
  static std::string probe_from;
  static std::vector<std::string> probe_to;
  auto* probe = cmd->add_subcommand(
      "probe", "Measure RTTs from a device to the candidates (over SSH, from that device)");
  probe->add_option("--from", probe_from, "The device to measure from")
      ->required()
      ->option_text("DEVICE");
  probe->add_option("--to", probe_to, "Devices to measure (default: every cluster member)")
      ->option_text("DEVICE...");
  examples(probe, {"gedge sched probe --from cam-1",
                   "gedge sched probe --from h1 --to far1 --to h2 -o json"});
  on_run(probe, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto rep, device_probe(*inv, paths, probe_from, probe_to, ctx.g.timeout_s));
    GEDGE_TRY(sched::record_rtts(*inv, probe_from, rep.rtts));
    std::optional<Error> err;
    if (!rep.unreachable.empty())
      err = Error{rep.rtts.empty() ? ErrorCode::unreachable : ErrorCode::partial,
                  fmt::format("no answer from {} (measured from {})",
                              fmt::join(rep.unreachable, ", "), probe_from),
                  ""};
    return Outcome{
        View{rep.rows, {{"from", "/from"}, {"to", "/to"}, {"rtt_ms", "/rtt_ms"}}, "", ""}, err,
        std::nullopt};
  });

  // submit
  static PlaceFlags sf;
  static std::string priority = "normal";
  auto* submit =
      cmd->add_subcommand("submit", "Queue a placement request (processed by 'gedge sched run')");
  add_place_flags(submit, sf);
  submit->add_option("--priority", priority, "normal | high (front of the queue)")
      ->check(CLI::IsMember({"normal", "high"}))
      ->option_text("PRIORITY");
  examples(submit,
           {"gedge sched submit yolo.yaml --from cam-1",
            "gedge sched submit web.yaml --policy least-allocated --priority high -o json"});
  on_run(submit, ctx, [&ctx, submit]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto in, load_input(sf, submit));
    GEDGE_TRY(sched::workload_from(in));
    GEDGE_TRY(sched::build_request(sf.r));
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    sched::SubmitRequest r;
    // What the queue re-reads later: the file as written, or the manifests as one List.
    r.spec = in.canonical_text();
    r.origin = sf.file;
    r.priority = priority == "high" ? 1 : 0;
    GEDGE_TRY_ASSIGN(r.options, sched::request_options(sf.r));
    if (!sf.state.empty()) {
      GEDGE_TRY(sched::read_state(sf.state));
      r.options["state"] = std::filesystem::absolute(sf.state).string();
    }
    GEDGE_TRY_ASSIGN(auto row, sched::submit(*inv, r));
    return Outcome{View{row, {}, "", ""}, std::nullopt, std::nullopt};
  });

  // run
  static bool once = false;
  static bool retry_now = false;
  static int max_n = 0;
  auto* run = cmd->add_subcommand(
      "run", "Process queued requests: dispatched -> scheduling -> completed | failed");
  run->add_flag("--once", once, "Process what is queued now and exit (cron-friendly; the default)");
  run->add_option("--max", max_n, "At most N requests")->option_text("N");
  run->add_flag(
      "--retry-now", retry_now,
      "Also take requests still waiting out their retry backoff (30 s doubling, at most 10 min)");
  examples(run, {"gedge sched run --once", "* * * * * gedge sched run --once --max 50   # crontab",
                 "gedge sched run --once --retry-now   # retry the re-queued requests now"});
  on_run(run, ctx, [&ctx]() -> Result<Outcome> {
    if (max_n < 0) return fail(ErrorCode::usage, "--max must be positive");
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    sched::RunOptions o;
    o.once = once;
    o.max = max_n;
    o.retry_now = retry_now;
    GEDGE_TRY_ASSIGN(auto rows, sched::run_queue(*inv, o));
    auto err = sched::run_error(rows);
    return Outcome{
        requests_view(rows, rows.empty() ? "nothing due: the queue is empty or its requests wait "
                                           "out their retry backoff (--retry-now)"
                                         : ""),
        err, std::nullopt};
  });

  // ls
  static std::string ls_state;
  auto* ls = cmd->add_subcommand("ls", "List scheduling requests");
  ls->add_option("--state", ls_state, "Only requests in this state")->option_text("STATE");
  examples(ls, {"gedge sched ls", "gedge sched ls --state failed -o json"});
  on_run(ls, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto rows, sched::list_requests(*inv, ls_state));
    return Outcome{requests_view(rows), std::nullopt, std::nullopt};
  });

  // cancel
  static int64_t cancel_id = 0;
  auto* cancel = cmd->add_subcommand("cancel", "Cancel a queued request");
  cancel->add_option("ID", cancel_id, "Request id (see 'gedge sched ls')")->required();
  examples(cancel, {"gedge sched cancel 12"});
  on_run(cancel, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto row, sched::cancel(*inv, cancel_id));
    std::string footer =
        row.value("changed", true)
            ? ""
            : fmt::format("request {} was already canceled; nothing changed", cancel_id);
    return Outcome{View{row, {}, "", footer}, std::nullopt, std::nullopt};
  });
}

}  // namespace gedge::cli
