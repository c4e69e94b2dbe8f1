// gedge svc scale | rm | catalog | autoscale: the verbs on deployed services and registries.
// Thin: flags -> request -> libgedge::svc -> View.
#include <fmt/format.h>

#include "app.hpp"
#include "gedge/stores.hpp"
#include "gedge/svc.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

using nlohmann::json;

View deploy_view(const json& result);  // svc.cpp

void register_svc_manage(CLI::App* cmd, Ctx& ctx) {
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
      return Outcome{
          View{
              out.result,
              {{"where", "/where"}, {"removed", "/what"}, {"state", "/state"}, {"error", "/error"}},
              "/rows",
              fmt::format("service '{}' removed from {}", name, out.result.value("cluster", ""))}
              .with_rows(svc::removed_rows(out.result)),
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
