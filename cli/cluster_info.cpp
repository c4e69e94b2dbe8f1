// gedge cluster ls | show | status | rm | export: what the inventory and the clusters say.
#include <fmt/format.h>
#include <unistd.h>

#include "app.hpp"
#include "gedge/cluster.hpp"
#include "gedge/stores.hpp"
#include "ignore_not_found.hpp"

namespace gedge::cli {

void register_cluster_info(CLI::App* cmd, Ctx& ctx) {
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
    return Outcome{View{j,
                        {{"device", "/device"},
                         {"role", "/role"},
                         {"state", "/state"},
                         {"metrics", "/metrics_url"},
                         {"last run", "/last_run"}},
                        "/members",
                        cluster::show_summary(j)},
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
      return Outcome{View{s.result,
                          {{"node", "/name"},
                           {"ready", "/ready"},
                           {"cpu", "/capacity/cpu"},
                           {"memory", "/capacity/memory"},
                           {"alloc cpu", "/allocatable/cpu"},
                           {"alloc memory", "/allocatable/memory"}},
                          "/nodes",
                          cluster::kubernetes_status_summary(s.result)},
                     s.partial, std::nullopt};
    if (s.result.value("source", "") == "prometheus") {
      // 5-minute averages and, on a terminal, the last hour of CPU as a sparkline (-o json
      // carries the numbers instead).
      bool tty = ::isatty(1) == 1;
      std::vector<Column> cols = {{"device", "/device"},
                                  {"up", "/up"},
                                  {"cpu % 5m", "/metrics/cpu_busy_percent"},
                                  {"mem used 5m", "/metrics/memory_used_bytes"},
                                  {"mem total", "/metrics/memory_total_bytes"},
                                  {"disk free", "/metrics/disk_free_bytes"}};
      if (tty) cols.push_back({"cpu last hour", "/cpu_1h"});
      return Outcome{
          View{s.result, cols, "/members", cluster::prometheus_status_summary(s.result)}.with_rows(
              cluster::prometheus_status_rows(s.result, tty)),
          s.partial, std::nullopt};
    }
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
