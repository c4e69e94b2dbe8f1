// gedge svc: render (deploy, ls, status, scale, rm are still to come). Thin: flags -> request -> libgedge::svc.
#include <fmt/format.h>

#include "app.hpp"
#include "gedge/svc.hpp"

namespace gedge::cli {

void register_svc(CLI::App& app, Ctx& ctx) {
  auto* cmd = app.add_subcommand("svc", "");
  for (const auto& noun : nouns())
    if (std::string_view(noun.name) == "svc") cmd->description(noun.summary);
  cmd->require_subcommand(1);

  // render
  {
    auto* c = cmd->add_subcommand("render", "Expand a service or pipeline file into Kubernetes objects and the container-host plan (offline)");
    static std::string file;
    c->add_option("FILE", file, "service or pipeline file (YAML or JSON)")->required();
    examples(c, {"gedge svc render app.yaml", "gedge svc render app.yaml -o json | jq '.[0]'",
                 "gedge svc render pipeline.yaml > manifests.yaml"});
    on_run(c, ctx, [&ctx]() -> Result<Outcome> {
      auto spec = GEDGE_TRY(svc::load_spec(file));
      auto docs = svc::render_all(spec);
      std::string o = ctx.output_raw();
      if (o == "json") return Outcome{View{}, std::nullopt, nlohmann::json(docs).dump(2) + "\n"};
      if (o == "" || o == "yaml") return Outcome{View{}, std::nullopt, svc::to_multidoc_yaml(docs)};
      nlohmann::json rows = nlohmann::json::array();
      for (const auto& d : docs)
        rows.push_back({{"kind", d["kind"]}, {"name", d["metadata"]["name"]}, {"namespace", d["metadata"]["namespace"]},
                        {"apiVersion", d["apiVersion"]}});
      return Outcome{View{rows, {{"kind", "/kind"}, {"name", "/name"}, {"namespace", "/namespace"}, {"api version", "/apiVersion"}}, "", ""},
                     std::nullopt, std::nullopt};
    });
  }
}

}  // namespace gedge::cli
