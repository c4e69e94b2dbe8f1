// gedge svc: render | deploy | ls | status | logs | scale | rm | catalog | autoscale.
// Thin: flags -> request -> libgedge::svc -> View.
#include "gedge/svc.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "app.hpp"
#include "gedge/document.hpp"
#include "gedge/stores.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

namespace {

using nlohmann::json;

// One row per replica action of every service (deploy, scale, autoscale).
View deploy_view(const json& result) {
  json rows = json::array();
  for (const auto& s : result.value("services", json::array()))
    for (const auto& a : s.value("actions", json::array()))
      rows.push_back({{"service", s["name"]},
                      {"replica", a.contains("replica") ? json(a["replica"]) : json("-")},
                      {"target", a.value("device", s.value("namespace", ""))},
                      {"action", a["action"]},
                      {"state", a.value("state", "")},
                      {"error", a.value("error", "")}});
  for (const auto& s : result.value("services", json::array()))
    for (const auto& o : s.value("objects", json::array()))
      rows.push_back({{"service", s["name"]},
                      {"replica", "-"},
                      {"target", o["kind"].get<std::string>() + "/" + o["name"].get<std::string>()},
                      {"action", o["action"]},
                      {"state", s.value("state", "")},
                      {"error", ""}});
  std::string footer;
  for (const auto& s : result.value("services", json::array()))
    footer += fmt::format("{}{}: {} ({} replicas{})", footer.empty() ? "" : "\n",
                          s.value("name", ""), s.value("state", ""), s.value("replicas", 0),
                          result.value("dry_run", false) ? ", dry run: nothing changed" : "");
  return View{result,
              {{"service", "/service"},
               {"replica", "/replica"},
               {"target", "/target"},
               {"action", "/action"},
               {"state", "/state"},
               {"error", "/error"}},
              "/rows",
              footer}
      .with_rows(rows);
}

Result<json> read_placement(const std::string& file) {
  if (file.empty()) return json();
  GEDGE_TRY_ASSIGN(auto text, read_input_file(file, 16u << 20, "--placement file"));
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(ErrorCode::usage, fmt::format("--placement '{}': not a JSON object", file),
                "give the output of 'gedge sched place FILE -o json'");
  return j;
}

}  // namespace

// Shared with `gedge sched place --apply`.
Result<Outcome> run_deploy(Ctx& ctx, const std::string& file, svc::DeployRequest req,
                           bool allow_unknown_kinds) {
  GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
  GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
  GEDGE_TRY_ASSIGN(auto spec, svc::load_spec(file, {}, allow_unknown_kinds));
  req.ssh_timeout_s = ctx.g.timeout_s;
  req.parallel = ctx.g.parallel;
  GEDGE_TRY_ASSIGN(auto out, svc::deploy(*inv, paths, spec, req, ctx.reporter()));
  return Outcome{deploy_view(out.result), out.partial, std::nullopt};
}

void register_svc(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("svc", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "svc") cmd->description(noun.summary);
  cmd->require_subcommand(1);

  // render
  {
    auto* c = cmd->add_subcommand("render",
                                  "Expand a service or pipeline file into Kubernetes objects and "
                                  "the container-host plan (offline)");
    static std::string file;
    static bool unknown = false;
    c->add_option("FILE", file,
                  "service or pipeline file, Kubernetes manifests (YAML stream, JSON, List) or a "
                  "directory of them")
        ->required();
    c->add_flag("--allow-unknown-kinds", unknown,
                "Pass Kubernetes kinds gedge does not know through");
    examples(c,
             {"gedge svc render app.yaml", "gedge svc render app.yaml -o json | jq '.[0]'",
              "gedge svc render pipeline.yaml > manifests.yaml", "gedge svc render k8s/ -o json"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto spec, svc::load_spec(file, {}, unknown));
      auto docs = svc::render_all(spec);
      std::string o = ctx.output_raw();
      if (o == "json") return Outcome{View{}, std::nullopt, nlohmann::json(docs).dump(2) + "\n"};
      if (o == "" || o == "yaml") return Outcome{View{}, std::nullopt, svc::to_multidoc_yaml(docs)};
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& d : docs)
        rows.push_back({{"kind", d["kind"]},
                        {"name", d["metadata"]["name"]},
                        {"namespace", d["metadata"]["namespace"]},
                        {"apiVersion", d["apiVersion"]}});
      return Outcome{View{rows,
                          {{"kind", "/kind"},
                           {"name", "/name"},
                           {"namespace", "/namespace"},
                           {"api version", "/apiVersion"}},
                          "",
                          ""},
                     std::nullopt, std::nullopt};
    });
  }

  // deploy
  {
    struct F {
      std::string file, cluster, placement;
      bool dry_run = false, wait = true, force = false, unknown = false, unused = false;
      double timeout = 120;
      std::string root = "/var/lib/gedge/runtimes";
    };
    static F f;
    auto* c = cmd->add_subcommand("deploy",
                                  "Deploy a service or pipeline to a cluster (podman on container "
                                  "hosts, server-side apply on Kubernetes)");
    c->add_option("FILE", f.file,
                  "service or pipeline file, Kubernetes manifests (YAML stream, JSON, List) or a "
                  "directory of them")
        ->required();
    c->add_option("--cluster", f.cluster, "Target cluster")->required()->option_text("C");
    c->add_flag("--allow-unknown-kinds", f.unknown,
                "Pass Kubernetes kinds gedge does not know through (Kubernetes clusters)");
    c->add_flag("--allow-unused", f.unused,
                "Container hosts: deploy manifests whose ConfigMaps, Secrets or claims no "
                "workload uses, leaving those out (listed; without it they are exit 2)");
    c->add_option("--placement", f.placement,
                  "A 'gedge sched place -o json' result: stages go to the nodes it chose")
        ->option_text("PLAN.json");
    c->add_flag("--dry-run", f.dry_run,
                "Show what would change (Kubernetes: the server validates with dryRun=All)");
    c->add_flag("--wait,!--no-wait", f.wait,
                "Wait for replicas to run and their ports to answer (default; --no-wait returns "
                "after starting them)");
    c->add_option("--timeout", f.timeout,
                  "Seconds to wait per service for running replicas / an available Deployment")
        ->default_str("120");
    c->add_flag("--force-conflicts", f.force,
                "Kubernetes: take over fields another field manager owns");
    c->add_option("--runtime-root", f.root, "Where runtime bundles live on the devices")
        ->default_str("/var/lib/gedge/runtimes");
    examples(c, {"gedge svc deploy web.yaml --cluster edge",
                 "gedge svc deploy yolo.yaml --cluster edge --placement plan.json -o json",
                 "gedge svc deploy web.yaml --cluster k8s-prod --dry-run",
                 "gedge svc deploy web.yaml --cluster edge --timeout 300",
                 "gedge svc deploy k8s/ --cluster edge --allow-unused"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      svc::DeployRequest req;
      req.cluster = f.cluster;
      GEDGE_TRY_ASSIGN(req.placement, read_placement(f.placement));
      req.dry_run = f.dry_run;
      req.wait = f.wait;
      req.timeout_s = f.timeout;
      req.force_conflicts = f.force;
      req.runtime_root = f.root;
      req.allow_unused = f.unused;
      return run_deploy(ctx, f.file, req, f.unknown);
    });
  }

  // ls
  {
    static std::string cluster;
    auto* c = cmd->add_subcommand("ls", "List deployed services");
    c->add_option("--cluster", cluster, "Only this cluster")->option_text("C");
    examples(c, {"gedge svc ls", "gedge svc ls --cluster edge -o json"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto rows, svc::list_services(*inv, cluster));
      return Outcome{View{rows,
                          {{"name", "/name"},
                           {"cluster", "/cluster"},
                           {"kind", "/kind"},
                           {"namespace", "/namespace"},
                           {"state", "/state"},
                           {"replicas", "/replicas"},
                           {"nodes", "/nodes"},
                           {"updated", "/updated_at"}},
                          "",
                          ""},
                     std::nullopt, std::nullopt};
    });
  }

  // status
  {
    static std::string name, cluster;
    auto* c = cmd->add_subcommand("status",
                                  "Per replica: device or pod, state, restarts, ports (read live)");
    c->add_option("NAME", name, "Service name")->required();
    c->add_option("--cluster", cluster, "The cluster (when the name is deployed on several)")
        ->option_text("C");
    examples(c, {"gedge svc status web", "gedge svc status web --cluster edge -o json"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(auto st, svc::status(*inv, paths, name, cluster, ctx.g.timeout_s));
      json rows = st.result["replicas"];
      for (auto& r : rows) {
        r["where"] = r.contains("device") ? r["device"] : r.value("node", json(""));
        r["what"] = r.contains("container") ? r["container"] : r.value("pod", json(""));
      }
      std::string footer = fmt::format("{}: {} of {} ready ({})", name, st.result.value("ready", 0),
                                       st.result.value("desired", 0), st.result.value("state", ""));
      return Outcome{View{st.result,
                          {{"replica", "/replica"},
                           {"device/node", "/where"},
                           {"container/pod", "/what"},
                           {"state", "/state"},
                           {"restarts", "/restarts"},
                           {"ports", "/ports"}},
                          "/rows",
                          footer}
                         .with_rows(rows),
                     st.partial, std::nullopt};
    });
  }

  // logs
  {
    static svc::LogsRequest lr;
    static std::string replica, since;
    auto* c = cmd->add_subcommand(
        "logs",
        "Print a service's logs (container hosts: podman logs; Kubernetes: the pod log API)");
    c->add_option("NAME", lr.name, "Service name")->required();
    c->add_option("--cluster", lr.cluster, "The cluster (when the name is deployed on several)")
        ->option_text("C");
    c->add_option("--replica", replica,
                  "Only this replica: its number on container hosts, its pod name on Kubernetes")
        ->option_text("R");
    c->add_option("--container", lr.container,
                  "Kubernetes: only this container of each pod (default: all)")
        ->option_text("C");
    c->add_option("--tail", lr.tail, "Only the last N lines (of each replica)")->option_text("N");
    c->add_option("--since", since, "Only lines newer than this: 30s, 5m, 2h, 1h30m")
        ->option_text("D");
    c->add_flag("--follow,-f", lr.follow,
                "Keep printing new lines until Ctrl-C (container hosts: one replica; Kubernetes: "
                "every pod at once)");
    examples(c, {"gedge svc logs web", "gedge svc logs web --replica 0 --tail 50",
                 "gedge svc logs web --replica 1 -f",
                 "gedge svc logs detector --cluster edge-k8s --since 10m --follow",
                 "gedge svc logs detector --cluster edge-k8s --replica detector-7d9f-x2kq "
                 "--container sidecar --tail 20"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      if (!replica.empty()) {
        lr.pod = replica;
        if (replica.find_first_not_of("0123456789") == std::string::npos && replica.size() < 9)
          lr.replica = std::stoi(replica);
      }
      if (!since.empty()) {
        GEDGE_TRY_ASSIGN(lr.since_s, svc::parse_duration_s(since, "--since"));
      }
      lr.ssh_timeout_s = ctx.g.timeout_s;
      GEDGE_TRY(svc::logs(*inv, paths, lr, [](std::string_view chunk) {
        std::fwrite(chunk.data(), 1, chunk.size(), stdout);
        std::fflush(stdout);
      }));
      return Outcome{View{}, std::nullopt, std::string()};
    });
  }

  // scale
  {
    static std::string name, cluster, file;
    static int replicas = -1;
    static double timeout = 120;
    auto* c = cmd->add_subcommand("scale", "Change a service's replica count and converge it");
    c->add_option("NAME", name, "Service name")->required();
    c->add_option("REPLICAS", replicas, "The new replica count")
        ->required()
        ->check(CLI::NonNegativeNumber);
    c->add_option("--cluster", cluster, "The cluster (when the name is deployed on several)")
        ->option_text("C");
    c->add_option("--timeout", timeout, "Seconds to wait for new replicas")->default_str("120");
    c->add_option("--file", file,
                  "The Kubernetes manifests the service was deployed from: the ConfigMap/Secret "
                  "contents a device without them needs (gedge keeps no copy)")
        ->option_text("FILE");
    examples(c, {"gedge svc scale web 3", "gedge svc scale web 0 --cluster edge -o json",
                 "gedge svc scale web 3 --file k8s/"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      svc::DeployRequest base;
      base.timeout_s = timeout;
      base.ssh_timeout_s = ctx.g.timeout_s;
      base.contents_file = file;
      GEDGE_TRY_ASSIGN(auto out,
                       svc::scale(*inv, paths, name, cluster, replicas, base, ctx.reporter()));
      return Outcome{deploy_view(out.result), out.partial, std::nullopt};
    });
  }

  // rm
  {
    static std::string name, cluster;
    static bool yes = false;
    auto* c = cmd->add_subcommand(
        "rm", "Remove exactly what gedge created for a service, and its record");
    c->add_option("NAME", name, "Service name")->required();
    c->add_option("--cluster", cluster, "The cluster (when the name is deployed on several)")
        ->option_text("C");
    c->add_flag("--yes,-y", yes, "Do not ask for confirmation");
    static bool ignore_missing = false;
    add_ignore_not_found(c, ignore_missing);
    examples(c, {"gedge svc rm web --yes", "gedge svc rm web --cluster edge -y -o json",
                 "gedge svc rm web -y --ignore-not-found"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      GEDGE_TRY_ASSIGN(bool known, ServiceStore(*inv).exists(name, cluster));
      if (!known) {
        Error e{ErrorCode::not_found,
                cluster.empty()
                    ? fmt::format("service '{}' not found", name)
                    : fmt::format("service '{}' not found on cluster '{}'", name, cluster),
                "gedge svc ls"};
        if (auto none = nothing_removed(ignore_missing, e)) return *none;
        return std::unexpected(e);
      }
      GEDGE_TRY(confirm(ctx, yes, fmt::format("remove service '{}' and its containers", name)));
      GEDGE_TRY_ASSIGN(auto out,
                       svc::remove(*inv, paths, name, cluster, ctx.g.timeout_s, ctx.reporter()));
      json rows = out.result["removed"];
      for (auto& r : rows) {
        json what = r.value("containers", json::array());
        if (what.empty() && r.contains("kind"))
          what = r["kind"].get<std::string>() + "/" + r.value("name", "");
        r["what"] = what;
        r["where"] = r.value("device", r.value("namespace", ""));
      }
      return Outcome{
          View{
              out.result,
              {{"where", "/where"}, {"removed", "/what"}, {"state", "/state"}, {"error", "/error"}},
              "/rows",
              fmt::format("service '{}' removed from {}", name, out.result.value("cluster", ""))}
              .with_rows(rows),
          out.partial, std::nullopt};
    });
  }

  // catalog
  {
    static std::string registry;
    static bool plain = false;
    auto* c = cmd->add_subcommand("catalog",
                                  "List the images a registry offers (Docker Registry v2 API)");
    c->add_option("--registry", registry, "Registry HOST:PORT")
        ->required()
        ->option_text("HOST:PORT");
    c->add_flag("--plain-http", plain,
                "Plain HTTP (a lab registry without TLS); default is HTTPS, verified");
    examples(c, {"gedge svc catalog --registry 10.213.0.1:5000 --plain-http",
                 "gedge svc catalog --registry registry.example:443 -o json"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto repos, svc::catalog(registry, plain, ctx.g.timeout_s));
      return Outcome{View{repos, {{"repository", "/repository"}, {"tags", "/tags"}}, "", ""},
                     std::nullopt, std::nullopt};
    });
  }

  // autoscale
  {
    static std::string cluster;
    static bool once = false;
    auto* c = cmd->add_subcommand(
        "autoscale",
        "Container hosts: one autoscaler step (CPU use vs autoscale.cpu, within min..max)");
    c->add_option("--cluster", cluster, "Only this cluster")->option_text("C");
    c->add_flag("--once", once, "Run one step and exit (cron-friendly; the only mode)")->required();
    examples(c,
             {"gedge svc autoscale --once", "gedge svc autoscale --once --cluster edge -o json"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
      GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
      svc::DeployRequest base;
      base.ssh_timeout_s = ctx.g.timeout_s;
      GEDGE_TRY_ASSIGN(auto out, svc::autoscale_once(*inv, paths, cluster, base, ctx.reporter()));
      return Outcome{View{out.result,
                          {{"service", "/name"},
                           {"cluster", "/cluster"},
                           {"cpu %", "/cpu_percent"},
                           {"target %", "/target"},
                           {"replicas", "/replicas"},
                           {"desired", "/desired"},
                           {"action", "/action"}},
                          "/services",
                          ""},
                     out.partial, std::nullopt};
    });
  }
}

}  // namespace gedge::cli
