// gedge sched: place | probe | submit | run | ls | cancel. Binds flags into sched::Request and
// hands them to libgedge (gedge/sched.hpp); placement itself is pure and lives there.
#include "gedge/sched.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "app.hpp"
#include "gedge/device.hpp"
#include "gedge/document.hpp"
#include "gedge/manifest.hpp"
#include "gedge/svc.hpp"

namespace gedge::cli {

namespace {

struct PlaceFlags {
  std::string file;
  std::string policy = "pipeline";
  std::string from;
  std::string state;
  std::string clusters;
  std::string node;
  std::string rank = "low-latency";
  std::string weights;
  bool explain = false;
  int top = 5;
  bool allow_unknown_kinds = false;
  std::string request;  // GS-Scheduler request/options JSON
};

void add_place_flags(CLI::App* cmd, PlaceFlags& f) {
  cmd->add_option("FILE", f.file,
                  "Service or pipeline file, Kubernetes manifests (YAML stream, JSON, List) or a "
                  "directory of them")
      ->required();
  cmd->add_option(
         "--policy", f.policy,
         "low-latency | least-allocated | most-allocated | select-clusters | node | pipeline "
         "(GS-Scheduler's GLowLatencyPriority, GMostRequestedPriority, GSelectedCluster too)")
      ->option_text("POLICY")
      ->default_str("pipeline");
  cmd->add_option("--from", f.from,
                  "Where the data comes from (device; overrides the file's source:)")
      ->option_text("DEVICE");
  cmd->add_option("--state", f.state,
                  "Offline world (schemas/sched-state.schema.json) instead of the inventory")
      ->option_text("FILE");
  cmd->add_option(
         "--clusters", f.clusters,
         R"(Ordered cluster levels: JSON '["c1", ["c2", "c3"]]', Python "['c1', ['c2', 'c3']]" or [c1,[c2,c3]])")
      ->option_text("LIST");
  cmd->add_option("--node", f.node, "For --policy node: the node, as CLUSTER/NODE")
      ->option_text("C/N");
  cmd->add_option("--rank", f.rank, "Secondary policy ranking a nested level (select-clusters)")
      ->option_text("POLICY")
      ->default_str("low-latency");
  cmd->add_option("--weights", f.weights,
                  "least/most-allocated weights, e.g. cpu=1,memory=1,gpu=200")
      ->option_text("K=V,...");
  cmd->add_option(
         "--request", f.request,
         "GS-Scheduler request options (JSON: priority, option.mode, option.parameters) as flags")
      ->option_text("FILE");
  cmd->add_flag("--allow-unknown-kinds", f.allow_unknown_kinds,
                "Pass Kubernetes kinds gedge does not know through");
}

// The input (gedge's format or Kubernetes manifests) and the flags it implies: GS-Scheduler's
// --request file, else a workload's gschConfig env, fills what the command line left out.
Result<manifest::Input> load_input(PlaceFlags& f, const CLI::App* cmd) {
  manifest::LoadOptions lo;
  lo.allow_unknown_kinds = f.allow_unknown_kinds;
  GEDGE_TRY_ASSIGN(auto in, manifest::load(f.file, lo));
  std::optional<sched::GschRequest> g;
  if (!f.request.empty()) {
    GEDGE_TRY_ASSIGN(auto text, read_input_file(f.request, 1 << 20, "request file"));
    GEDGE_TRY_ASSIGN(auto j, parse_json_strict(text, f.request));
    GEDGE_TRY_ASSIGN(g, sched::gs_request(j, f.request));
  } else if (cmd->get_option("--policy")->count() == 0) {
    GEDGE_TRY_ASSIGN(g, sched::gsch_request(in));
  }
  if (g) {
    if (cmd->get_option("--policy")->count() == 0 && !g->policy.empty()) f.policy = g->policy;
    if (f.clusters.empty()) f.clusters = g->clusters;
    if (f.from.empty()) f.from = g->from;
    if (f.node.empty()) f.node = g->node;
  }
  return in;
}

Result<sched::Weights> parse_weights(const std::string& s) {
  sched::Weights w;
  if (s.empty()) return w;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto eq = item.find('=');
    double v = 0;
    bool ok = eq != std::string::npos;
    if (ok) {
      try {
        std::size_t used = 0;
        v = std::stod(item.substr(eq + 1), &used);
        ok = used == item.size() - eq - 1 && std::isfinite(v) && v >= 0 && v <= 1e6;
      } catch (...) {
        ok = false;
      }
    }
    std::string k = ok ? item.substr(0, eq) : "";
    if (k == "cpu")
      w.cpu = v;
    else if (k == "memory")
      w.memory = v;
    else if (k == "gpu")
      w.gpu = v;
    else
      return fail(ErrorCode::usage, fmt::format("malformed --weights item '{}'", item),
                  "example: --weights cpu=1,memory=1,gpu=200");
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return w;
}

Result<sched::Request> request_of(const PlaceFlags& f) {
  sched::Request r;
  GEDGE_TRY_ASSIGN(r.policy, sched::parse_policy(f.policy));
  GEDGE_TRY_ASSIGN(r.rank, sched::parse_policy(f.rank));
  if (r.rank != sched::Policy::low_latency && r.rank != sched::Policy::least_allocated &&
      r.rank != sched::Policy::most_allocated)
    return fail(ErrorCode::usage, fmt::format("--rank {} cannot rank clusters", f.rank),
                "use low-latency, least-allocated or most-allocated");
  r.source = f.from;
  if (!f.clusters.empty()) {
    GEDGE_TRY_ASSIGN(r.levels, sched::parse_levels(f.clusters));
  }
  r.node = f.node;
  GEDGE_TRY_ASSIGN(r.weights, parse_weights(f.weights));
  r.explain = f.explain;
  r.top_k = f.top;
  if (r.policy == sched::Policy::node && r.node.empty())
    return fail(ErrorCode::usage, "--policy node needs --node CLUSTER/NODE");
  if (r.policy != sched::Policy::node && !r.node.empty())
    return fail(ErrorCode::usage, "--node goes with --policy node");
  if (r.policy == sched::Policy::pipeline && !r.levels.empty())
    return fail(ErrorCode::usage, "--clusters does not apply to --policy pipeline",
                "restrict the world with --state, or use select-clusters");
  return r;
}

Result<std::string> read_input(const std::string& file, const char* what) {
  // A regular file of bounded size: /dev/zero grew memory without end, a FIFO hung.
  return read_input_file(file, 16u << 20, what);
}

Result<sched::World> load_world(Ctx& ctx, const std::string& state) {
  if (!state.empty()) {
    GEDGE_TRY_ASSIGN(auto text, read_input(state, "state file"));
    return sched::parse_state(text, state);
  }
  GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
  return sched::world_from_inventory(*inv);
}

std::string fmt_ms(const nlohmann::json& v) {
  return v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : "-";
}

// The table view of a placement: one row per stage, the E2E and (with --explain) each stage's
// feasibility line and its top-k ranked candidates, rendered from the JSON's "explain".
View placement_view(const sched::Placement& p, const nlohmann::json& data, bool explain, int top) {
  std::string footer =
      fmt::format("e2e {} ms (policy {}{})", fmt_ms(data["e2e_ms"]), sched::policy_name(p.policy),
                  p.method.empty() ? "" : ", method " + p.method);
  if (!p.e2e_note.empty()) footer += "\nnote: " + p.e2e_note;
  if (explain && data.contains("explain")) {
    for (const auto& st : data["explain"]["stages"]) {
      footer += "\n" + st["summary"].get<std::string>();
      int i = 0;
      for (const auto& c : st["ranking"]) {
        if (i >= top) break;
        std::string terms;
        for (auto it = c["terms"].begin(); it != c["terms"].end(); ++it)
          terms +=
              fmt::format(" {}={}", it.key(),
                          it.value().is_number_float() ? fmt_ms(it.value()) : it.value().dump());
        footer += fmt::format("\n  #{} {}/{} score={:.3f}{}", ++i, c["cluster"].get<std::string>(),
                              c["node"].get<std::string>(), c["score"].get<double>(), terms);
      }
    }
  }
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
  place->add_flag("--explain", pf.explain,
                  "Every candidate's reason or terms; top-k per stage in the table");
  place->add_option("--top", pf.top, "Candidates shown per stage with --explain (table)")
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
    GEDGE_TRY_ASSIGN(auto req, request_of(pf));
    GEDGE_TRY_ASSIGN(auto world, load_world(ctx, pf.state));
    auto placed = sched::place(world, wl, req);
    if (!placed && placed.error().code == ErrorCode::failure && pf.explain) {
      // Nothing fits: exactly when the operator needs the explanation, every node's every reason.
      auto why = sched::explain_unplaced(world, wl, req);
      std::string footer;
      for (const auto& st : why["stages"])
        footer += (footer.empty() ? "" : "\n") + st["summary"].get<std::string>();
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& st : why["stages"])
        for (const auto& n : st["nodes"])
          rows.push_back({{"stage", st["stage"]},
                          {"cluster", n["cluster"]},
                          {"node", n["node"]},
                          {"fits", n["fits"]},
                          {"reasons", n["reasons"]}});
      View v{why,
             {{"stage", "/stage"},
              {"cluster", "/cluster"},
              {"node", "/node"},
              {"fits", "/fits"},
              {"reasons", "/reasons"}},
             "",
             footer};
      return Outcome{std::move(v).with_rows(rows), placed.error(), std::nullopt};
    }
    GEDGE_TRY_ASSIGN(auto p, std::move(placed));
    auto data = sched::to_json(p);
    if (apply) {
      // Every stage must land on one cluster: the one --cluster names, or the only one used.
      std::string target = apply_cluster;
      for (const auto& pl : data["placements"]) {
        std::string c = pl.value("cluster", "");
        if (target.empty()) target = c;
        if (c != target)
          return fail(
              ErrorCode::usage,
              fmt::format("--apply deploys to one cluster, but the placement uses '{}' and '{}'",
                          target, c),
              "restrict the candidates (--policy select-clusters --clusters '[\"C\"]'), or deploy "
              "each cluster's "
              "stages with 'gedge svc deploy --placement'");
      }
      svc::DeployRequest dr;
      dr.cluster = target;
      dr.placement = data;
      GEDGE_TRY_ASSIGN(auto dep, run_deploy(ctx, pf.file, dr, pf.allow_unknown_kinds));
      nlohmann::json both{{"placement", data}, {"deploy", dep.view.data}};
      View v = placement_view(p, data, pf.explain, pf.top);
      v.data = both;
      v.rows = "/placement/placements";
      v.footer += "\n" + dep.view.footer;
      return Outcome{v, dep.error, std::nullopt};
    }
    return Outcome{placement_view(p, data, pf.explain, pf.top), std::nullopt, std::nullopt};
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
  static bool high = false;
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
    (void)high;
    GEDGE_TRY_ASSIGN(auto in, load_input(sf, submit));
    GEDGE_TRY(sched::workload_from(in));
    GEDGE_TRY_ASSIGN(auto req, request_of(sf));
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    sched::SubmitRequest r;
    // What the queue re-reads later: the file as written, or the manifests as one List.
    r.spec = in.canonical_text();
    r.origin = sf.file;
    r.priority = priority == "high" ? 1 : 0;
    r.options = {{"policy", sf.policy}, {"rank", sf.rank}};
    if (!sf.from.empty()) r.options["from"] = sf.from;
    if (!sf.clusters.empty()) r.options["clusters"] = sf.clusters;
    if (!sf.node.empty()) r.options["node"] = sf.node;
    if (!sf.weights.empty())
      r.options["weights"] = {
          {"cpu", req.weights.cpu}, {"memory", req.weights.memory}, {"gpu", req.weights.gpu}};
    if (!sf.state.empty()) {
      GEDGE_TRY_ASSIGN(auto text, read_input(sf.state, "state file"));
      auto checked = sched::parse_state(text, sf.state);
      if (!checked) return std::unexpected(checked.error());
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
    std::optional<Error> err;
    int failed = 0;
    for (const auto& r : rows) failed += r["state"] == "failed";
    if (failed > 0)
      err = Error{ErrorCode::partial,
                  fmt::format("{} of {} requests failed for good", failed, rows.size()),
                  "see 'gedge sched ls --state failed'"};
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
