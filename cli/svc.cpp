// gedge svc: render | deploy | ls | status | logs | scale | rm | catalog | autoscale.
// Thin: flags -> request -> libgedge::svc -> View.
#include "gedge/svc.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "app.hpp"
#include "gedge/document.hpp"

namespace gedge::cli {

namespace {

using nlohmann::json;

}  // namespace

// One row per replica action of every service (deploy, scale, autoscale). Shared with svc_manage.
View deploy_view(const json& result) {
  return View{result,
              {{"service", "/service"},
               {"replica", "/replica"},
               {"target", "/target"},
               {"action", "/action"},
               {"state", "/state"},
               {"error", "/error"}},
              "/rows",
              svc::deploy_summary(result)}
      .with_rows(svc::deploy_rows(result));
}

namespace {

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

// svc_manage.cpp: scale, rm, catalog, autoscale.
void register_svc_manage(CLI::App* cmd, Ctx& ctx);

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
      return Outcome{View{st.result,
                          {{"replica", "/replica"},
                           {"device/node", "/where"},
                           {"container/pod", "/what"},
                           {"state", "/state"},
                           {"restarts", "/restarts"},
                           {"ports", "/ports"}},
                          "/rows",
                          svc::status_summary(st.result)}
                         .with_rows(svc::status_rows(st.result)),
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
      svc::set_replica(lr, replica);
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

  register_svc_manage(cmd, ctx);
}

}  // namespace gedge::cli
