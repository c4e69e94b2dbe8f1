// gedge cluster: build device clusters with Ansible, register Kubernetes clusters, and show them.
#include "gedge/cluster.hpp"

#include <fmt/format.h>

#include "app.hpp"

namespace gedge::cli {

namespace {

struct BuildFlags {
  cluster::BuildRequest req;
  std::string devices;
  std::vector<std::string> groups;
  std::string max_fail;
};

View build_view(const nlohmann::json& j) {
  return View{j,
              {{"device", "/name"},
               {"state", "/state"},
               {"changed", "/changed"},
               {"failed step", "/failed_step"},
               {"message", "/message"},
               {"metrics", "/metrics_url"}},
              "/devices",
              cluster::build_summary(j)};
}

Outcome build_outcome(cluster::BuildOutcome b) {
  return Outcome{build_view(b.result), b.partial, std::nullopt};
}

}  // namespace

// cluster_info.cpp: ls, show, status, rm, export.
void register_cluster_info(CLI::App* cmd, Ctx& ctx);

void register_cluster(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("cluster", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "cluster") cmd->description(noun.summary);
  cmd->require_subcommand(1);

  // build ---------------------------------------------------------------------------------
  auto bf = std::make_shared<BuildFlags>();
  auto* build =
      cmd->add_subcommand("build", "Build (or converge, or resume) a device cluster with Ansible");
  build->add_option("name", bf->req.name, "Cluster name")->required();
  build->add_option("--profile", bf->req.profile,
                    "containers | k3s | k8s (default: the cluster's, else containers)");
  build->add_option("--devices", bf->devices,
                    "Comma-separated device names (added to the cluster's members)");
  build
      ->add_option("-g,--group", bf->groups,
                   "Also every device in this inventory group (device import; :children included; "
                   "repeatable)")
      ->option_text("NAME");
  build->add_option("--server", bf->req.server,
                    "k3s/k8s: the server (control-plane) device (default: the first)");
  build->add_flag(
      "--monitoring", bf->req.monitoring,
      "Install, start and enable prometheus-node-exporter; record each metrics endpoint");
  build->add_option("--prometheus-on", bf->req.prometheus_on,
                    "Run the cluster's Prometheus server on this device (or localhost); gedge "
                    "keeps its targets (implies --monitoring)");
  build->add_option("--registry", bf->req.registry,
                    "HOST:PORT of the cluster's registry (trusted on every device)");
  build
      ->add_option(
          "--registry-ca", bf->req.registry_ca,
          "CA certificate (PEM) of the registry's TLS certificate; installed on every device as "
          "/etc/containers/certs.d/HOST:PORT/ca.crt")
      ->type_name("FILE");
  build->add_flag(
      "--insecure-registry", bf->req.insecure_registry,
      "Allow a registry without (verified) TLS: plain HTTP or an unknown certificate (warns)");
  build->add_option(
      "--smoke-image", bf->req.smoke_image,
      "Image the smoke run pulls and runs (default: each device checks the registry's "
      "/v2/ with its TLS and credentials and pulls the smallest of the first five images "
      "its catalog lists)");
  build->add_option(
      "--artifacts", bf->req.artifacts,
      "k3s: directory holding k3s (or k3s-arm64) and k3s-airgap-images-<arch>.tar[.zst]");
  build->add_flag(
      "--dry-run", bf->req.dry_run,
      "Print per device the steps that would change (Ansible --check --diff); change nothing");
  build->add_flag("--resume", bf->req.resume,
                  "Run only the devices whose last build failed or never finished");
  build->add_option("--max-fail", bf->max_fail,
                    "Stop the build when more than N (or N%) devices have failed");
  examples(
      build,
      {"gedge cluster build lab --profile containers --devices edge1,edge2,edge3 --registry "
       "10.213.0.1:5000 --insecure-registry --monitoring",
       "gedge cluster build lab --devices edge1,edge2 --registry reg.lan:5000 --registry-ca "
       "./lab-ca.pem",
       "gedge cluster build lab --devices edge1,edge2,edge3 --monitoring --prometheus-on edge1",
       "gedge cluster build lab --profile containers --devices edge1,edge2 --dry-run",
       "gedge cluster build lab --resume",
       "gedge cluster build k3 --profile k3s --devices a,b,c --server a --artifacts ./k3s-v1.30 "
       "--dry-run"});
  on_run(build, ctx, [&ctx, bf]() -> Result<Outcome> {
    auto req = bf->req;
    if (!bf->max_fail.empty()) {
      GEDGE_TRY_ASSIGN(req.max_fail, cluster::parse_max_fail(bf->max_fail));
    }
    req.parallel = ctx.g.parallel;
    req.timeout_s = ctx.g.timeout_s;
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY(cluster::complete_build_request(*inv, req, bf->devices, bf->groups));
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto built, cluster::build(*inv, paths, req, ctx.reporter()));
    return build_outcome(std::move(built));
  });

  // join / leave ---------------------------------------------------------------------------
  auto join_name = std::make_shared<std::string>();
  auto join_devs = std::make_shared<std::vector<std::string>>();
  auto* join = cmd->add_subcommand(
      "join", "Add devices to a device cluster and provision them with its profile");
  join->add_option("name", *join_name, "Cluster name")->required();
  join->add_option("devices", *join_devs, "Device names")->required();
  examples(join, {"gedge cluster join lab edge4", "gedge cluster join lab edge4 edge5 -o json"});
  on_run(join, ctx, [&ctx, join_name, join_devs]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto joined, cluster::join(*inv, paths, *join_name, *join_devs, ctx.g.parallel,
                                                ctx.g.timeout_s, ctx.reporter()));
    return build_outcome(std::move(joined));
  });

  auto leave_name = std::make_shared<std::string>();
  auto leave_devs = std::make_shared<std::vector<std::string>>();
  auto* leave = cmd->add_subcommand(
      "leave", "Remove devices from a device cluster (the hosts are left as they are)");
  leave->add_option("name", *leave_name, "Cluster name")->required();
  leave->add_option("devices", *leave_devs, "Device names")->required();
  examples(leave, {"gedge cluster leave lab edge4"});
  on_run(leave, ctx, [&ctx, leave_name, leave_devs]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto j, cluster::leave(*inv, paths, *leave_name, *leave_devs, ctx.g.timeout_s,
                                            ctx.reporter()));
    return Outcome{View{j, {}, "", ""}, std::nullopt, std::nullopt};
  });

  // register ---------------------------------------------------------------------------------
  auto reg_name = std::make_shared<std::string>();
  auto reg_kc = std::make_shared<std::string>();
  auto reg_ctx = std::make_shared<std::string>();
  auto* reg = cmd->add_subcommand(
      "register",
      "Register an existing Kubernetes cluster (where its kubeconfig is + context only)");
  reg->add_option("name", *reg_name, "Cluster name")->required();
  reg->add_option("--kubeconfig", *reg_kc,
                  "Kubeconfig file (default as kubectl: the KUBECONFIG list, ~/.kube/config, "
                  "in-cluster; credentials stay there)");
  reg->add_option("--context", *reg_ctx, "Context (default: the kubeconfig's current-context)");
  examples(
      reg,
      {"gedge cluster register edge-k8s --context edge",
       "KUBECONFIG=~/.kube/config:~/.kube/edge.yaml gedge cluster register edge-k8s --context edge",
       "gedge cluster register lab-k8s --kubeconfig ./kubeconfig -o json"});
  on_run(reg, ctx, [&ctx, reg_name, reg_kc, reg_ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto j, cluster::register_kubernetes(*inv, *reg_name, *reg_kc, *reg_ctx,
                                                          ctx.g.timeout_s, ctx.reporter()));
    return Outcome{
        View{j, {}, "", j.value("changed", false) ? "" : "already registered; nothing changed"},
        std::nullopt, std::nullopt};
  });

  register_cluster_info(cmd, ctx);
}

}  // namespace gedge::cli
