// gedge cluster: build device clusters with Ansible, register Kubernetes clusters, and show them.
#include "gedge/cluster.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

#include "app.hpp"
#include "gedge/device.hpp"
#include "gedge/metrics.hpp"
#include "gedge/stores.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

namespace {

struct BuildFlags {
  cluster::BuildRequest req;
  std::string devices;
  std::vector<std::string> groups;
  std::string max_fail;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    auto item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

View build_view(const nlohmann::json& j) {
  std::string footer;
  if (j.value("dry_run", false))
    footer =
        fmt::format("dry run: {} step(s) would change; nothing was changed", j.value("changed", 0));
  else if (j.contains("message"))
    footer = j["message"].get<std::string>();
  else if (j.value("changed", 0) == 0 && j["failed"].empty())
    footer =
        fmt::format("cluster {} is up to date; nothing changed", j["cluster"].get<std::string>());
  else
    footer =
        fmt::format("cluster {}: {} step(s) changed, state {}", j["cluster"].get<std::string>(),
                    j.value("changed", 0), j.value("state", "?"));
  return View{j,
              {{"device", "/name"},
               {"state", "/state"},
               {"changed", "/changed"},
               {"failed step", "/failed_step"},
               {"message", "/message"},
               {"metrics", "/metrics_url"}},
              "/devices",
              footer};
}

Outcome build_outcome(cluster::BuildOutcome b) {
  return Outcome{build_view(b.result), b.partial, std::nullopt};
}

// Status read from the cluster's Prometheus server: 5-minute averages and, on a terminal, the
// last hour of CPU as a sparkline (-o json carries the numbers instead).
Outcome prometheus_status_outcome(cluster::StatusOutcome s) {
  nlohmann::json rows = nlohmann::json::array();
  bool tty = ::isatty(1) == 1;
  for (auto m : s.result["members"]) {
    if (tty && m["metrics"].is_object()) {
      std::vector<double> v;
      for (const auto& x : m["metrics"].value("cpu_busy_percent_1h", nlohmann::json::array()))
        v.push_back(x.is_number() ? x.get<double>() : std::nan(""));
      m["cpu_1h"] = metrics::sparkline(v);
    }
    rows.push_back(m);
  }
  std::vector<Column> cols = {{"device", "/device"},
                              {"up", "/up"},
                              {"cpu % 5m", "/metrics/cpu_busy_percent"},
                              {"mem used 5m", "/metrics/memory_used_bytes"},
                              {"mem total", "/metrics/memory_total_bytes"},
                              {"disk free", "/metrics/disk_free_bytes"}};
  if (tty) cols.push_back({"cpu last hour", "/cpu_1h"});
  const auto& alerts = s.result["prometheus"]["alerts"];
  std::size_t firing = 0;
  for (const auto& a : alerts)
    if (a.value("state", "") == "firing") ++firing;
  auto footer = fmt::format("from Prometheus at {}; {} alert(s) firing{}",
                            s.result["prometheus"].value("url", ""), firing,
                            alerts.empty() ? "" : " (-o json lists them)");
  return Outcome{View{s.result, cols, "/members", footer}.with_rows(rows), s.partial, std::nullopt};
}

}  // namespace

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
    req.devices = split_list(bf->devices);
    if (!bf->max_fail.empty()) {
      GEDGE_TRY_ASSIGN(req.max_fail, cluster::parse_max_fail(bf->max_fail));
    }
    req.parallel = ctx.g.parallel;
    req.timeout_s = ctx.g.timeout_s;
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    for (const auto& g : bf->groups) {  // each group adds its devices (not found: exit 4)
      DeviceSelector sel;
      sel.groups = {g};
      GEDGE_TRY_ASSIGN(auto names, select_devices(*inv, sel));
      for (auto& n : names)
        if (std::find(req.devices.begin(), req.devices.end(), n) == req.devices.end())
          req.devices.push_back(n);
    }
    // A new cluster without --profile is a containers cluster.
    if (req.profile.empty() && !req.resume) {
      GEDGE_TRY_ASSIGN(bool known, ClusterStore(*inv).exists(req.name));
      if (!known) req.profile = "containers";
    }
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

  // ls / show / status ---------------------------------------------------------------------
  auto* ls = cmd->add_subcommand("ls", "List clusters");
  examples(ls, {"gedge cluster ls", "gedge cluster ls -o json"});
  on_run(ls, ctx, [&ctx]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto j, cluster::list(*inv));
    return Outcome{View{j,
                        {{"name", "/name"},
                         {"kind", "/kind"},
                         {"profile", "/profile"},
                         {"state", "/state"},
                         {"members", "/members"},
                         {"monitoring", "/monitoring"},
                         {"api server", "/api_server"}},
                        "",
                        ""},
                   std::nullopt, std::nullopt};
  });

  auto show_name = std::make_shared<std::string>();
  auto* show =
      cmd->add_subcommand("show", "Show a cluster, its members and each member's last build steps");
  show->add_option("name", *show_name, "Cluster name")->required();
  examples(show, {"gedge cluster show lab", "gedge cluster show lab -o json"});
  on_run(show, ctx, [&ctx, show_name]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto j, cluster::show(*inv, *show_name));
    return Outcome{
        View{j,
             {{"device", "/device"},
              {"role", "/role"},
              {"state", "/state"},
              {"metrics", "/metrics_url"},
              {"last run", "/last_run"}},
             "/members",
             fmt::format("cluster {} ({} {}), state {}", *show_name, j["kind"].get<std::string>(),
                         j["profile"].is_string() ? j["profile"].get<std::string>() : "",
                         j["state"].get<std::string>())},
        std::nullopt, std::nullopt};
  });

  auto status_name = std::make_shared<std::string>();
  auto* status = cmd->add_subcommand(
      "status",
      "Live status: member reachability and node-exporter metrics, or the Kubernetes API's view");
  status->add_option("name", *status_name, "Cluster name")->required();
  examples(status, {"gedge cluster status lab",
                    "gedge cluster status lab -o json | jq '.members[].metrics'"});
  on_run(status, ctx, [&ctx, status_name]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto s, cluster::status(*inv, paths, *status_name, ctx.g.parallel,
                                             ctx.g.timeout_s, ctx.reporter()));
    if (s.result["kind"] == "kubernetes")
      return Outcome{
          View{s.result,
               {{"node", "/name"},
                {"ready", "/ready"},
                {"cpu", "/capacity/cpu"},
                {"memory", "/capacity/memory"},
                {"alloc cpu", "/allocatable/cpu"},
                {"alloc memory", "/allocatable/memory"}},
               "/nodes",
               fmt::format(
                   "{} deployment(s), {} PV(s), {} storage class(es); -o json for pods by phase",
                   s.result["deployments"].size(), s.result["persistent_volumes"].size(),
                   s.result["storage_classes"].size())},
          s.partial, std::nullopt};
    if (s.result.value("source", "") == "prometheus")
      return prometheus_status_outcome(std::move(s));
    return Outcome{View{s.result,
                        {{"device", "/device"},
                         {"reachable", "/reachable"},
                         {"rtt ms", "/rtt_ms"},
                         {"cpu %", "/metrics/cpu_busy_percent"},
                         {"mem used", "/metrics/memory_used_bytes"},
                         {"mem total", "/metrics/memory_total_bytes"},
                         {"load1", "/metrics/load1"},
                         {"disk free", "/metrics/disk_free_bytes"}},
                        "/members",
                        ""},
                   s.partial, std::nullopt};
  });

  // rm / export ----------------------------------------------------------------------------
  auto rm_name = std::make_shared<std::string>();
  auto rm_yes = std::make_shared<bool>(false);
  auto* rm = cmd->add_subcommand(
      "rm", "Forget a cluster (members, journal); the hosts are left as they are");
  rm->add_option("name", *rm_name, "Cluster name")->required();
  rm->add_flag("--yes,-y", *rm_yes, "Do not ask for confirmation");
  auto rm_ignore = std::make_shared<bool>(false);
  add_ignore_not_found(rm, *rm_ignore);
  examples(rm, {"gedge cluster rm lab --yes", "gedge cluster rm lab --yes --ignore-not-found"});
  on_run(rm, ctx, [&ctx, rm_name, rm_yes, rm_ignore]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(bool known, ClusterStore(*inv).exists(*rm_name));
    if (!known) {
      Error e{ErrorCode::not_found, fmt::format("cluster '{}' not found", *rm_name),
              "gedge cluster ls"};
      if (auto none = nothing_removed(*rm_ignore, e)) return *none;
      return std::unexpected(e);
    }
    GEDGE_TRY(
        confirm(ctx, *rm_yes, fmt::format("remove cluster '{}' from the inventory", *rm_name)));
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto j,
                     cluster::remove(*inv, paths, *rm_name, ctx.g.timeout_s, ctx.reporter()));
    return Outcome{View{j, {}, "", ""}, std::nullopt, std::nullopt};
  });

  auto ex_name = std::make_shared<std::string>();
  auto ex_format = std::make_shared<std::string>();
  auto* ex = cmd->add_subcommand("export",
                                 "Export a device cluster as an Ansible inventory, Prometheus "
                                 "configuration or Grafana dashboard");
  ex->add_option("name", *ex_name, "Cluster name")->required();
  ex->add_option("--format", *ex_format,
                 "ansible | prometheus | prometheus-sd | prometheus-rules | grafana")
      ->required();
  examples(ex, {"gedge cluster export lab --format ansible > inventory.yml",
                "gedge cluster export lab --format prometheus >> prometheus.yml",
                "gedge cluster export lab --format prometheus-rules > gedge.rules.yml && promtool "
                "check rules gedge.rules.yml",
                "gedge cluster export lab --format prometheus-sd > targets/lab.json",
                "gedge cluster export lab --format grafana > gedge-lab-dashboard.json"});
  on_run(ex, ctx, [&ctx, ex_name, ex_format]() -> Result<Outcome> {
    GEDGE_TRY_ASSIGN(auto* inv, ctx.inventory());
    GEDGE_TRY_ASSIGN(auto paths, ctx.paths());
    GEDGE_TRY_ASSIGN(auto text, cluster::export_text(*inv, paths, *ex_name, *ex_format));
    // -o json|yaml wrap the text; otherwise it is printed verbatim (ready to redirect).
    auto o = ctx.output_raw();
    bool wrapped = o == "json" || o == "yaml";
    return Outcome{
        View{nlohmann::json{{"cluster", *ex_name}, {"format", *ex_format}, {"text", text}},
             {},
             "",
             ""},
        std::nullopt, wrapped ? std::nullopt : std::optional<std::string>(text)};
  });
}

}  // namespace gedge::cli
