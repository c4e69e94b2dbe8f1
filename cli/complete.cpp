// `gedge __complete WORDS...` (hidden), as cobra does it: the words typed after `gedge`, the last
// one being completed (possibly empty); prints one candidate a line, "VALUE\tDESCRIPTION", from
// the command tree (nouns, verbs, flags), flag value sets, and the inventory (devices, clusters,
// runtimes, services, requests). Nothing printed means "complete a file name".
#include "complete.hpp"

#include <fmt/format.h>

#include <iostream>
#include <map>

#include "gedge/stores.hpp"
#include "help.hpp"

namespace gedge::cli {

namespace {

using Candidates = std::vector<std::pair<std::string, std::string>>;

// Values of flags whose set is fixed; `--output` depends on the verb (some add formats).
const std::map<std::string, Candidates>& flag_values() {
  static const std::map<std::string, Candidates> v = {
      {"--color", {{"auto", "on a terminal"}, {"always", ""}, {"never", ""}}},
      {"--tier", {{"local", "on site"}, {"neighbor", "a nearby site"}, {"cloud", "a data centre"}}},
      {"--profile",
       {{"containers", "podman and node-exporter"},
        {"k3s", "k3s Kubernetes"},
        {"k8s", "kubeadm Kubernetes"}}},
      {"--format",
       {{"ansible", "Ansible inventory"},
        {"prometheus", "Prometheus scrape configuration"},
        {"prometheus-sd", "Prometheus file_sd targets"},
        {"prometheus-rules", "Prometheus alert rules"},
        {"grafana", "Grafana dashboard"}}},
      {"--policy",
       {{"low-latency", "nearest cluster first"},
        {"least-allocated", "spread"},
        {"most-allocated", "pack"},
        {"select-clusters", "the --clusters order"},
        {"node", "one named node"},
        {"pipeline", "joint placement of the stages"}}},
  };
  return v;
}

Candidates output_values(const std::string& path) {
  Candidates c = {
      {"table", "aligned columns (default)"}, {"json", "one JSON document"}, {"yaml", "YAML"}};
  if (path == "gedge runtime mounts")
    c.insert(
        c.end(),
        {{"k8s", "volume and env YAML"}, {"podman", "podman run flags"}, {"sh", "shell exports"}});
  if (path == "gedge tune plan")
    c.insert(
        c.end(),
        {{"podman", "podman run flags"}, {"k8s", "pod resources"}, {"systemd", "unit drop-in"}});
  return c;
}

// A store's completion candidates; none without a home (nothing to offer) or on any error.
template <class Store>
Candidates listed(Ctx& ctx) {
  Candidates out;
  auto inv = ctx.inventory();
  if (!inv) return out;
  auto got = Store(**inv).completions();
  if (!got) return out;
  for (auto& c : *got) out.emplace_back(std::move(c.value), std::move(c.description));
  return out;
}

Candidates devices(Ctx& ctx) {
  return listed<DeviceStore>(ctx);
}
Candidates clusters(Ctx& ctx) {
  return listed<ClusterStore>(ctx);
}
Candidates runtimes(Ctx& ctx) {
  return listed<RuntimeStore>(ctx);
}
Candidates services(Ctx& ctx) {
  return listed<ServiceStore>(ctx);
}
Candidates requests(Ctx& ctx) {
  return listed<RequestQueue>(ctx);
}

// What a value-taking flag completes to; nullopt: a file (or free text).
std::optional<Candidates> values_of(Ctx& ctx, const std::string& flag, const std::string& path) {
  if (flag == "-o" || flag == "--output") return output_values(path);
  if (auto it = flag_values().find(flag); it != flag_values().end()) return it->second;
  if (flag == "--device" || flag == "--devices" || flag == "--from" || flag == "--server" ||
      flag == "--prometheus-on")
    return devices(ctx);
  if (flag == "--cluster") return clusters(ctx);
  return std::nullopt;
}

// The positional arguments of verbs that name inventory objects.
std::optional<Candidates> positional(Ctx& ctx, const std::string& path) {
  static const std::map<std::string, Candidates (*)(Ctx&)> by_path = {
      {"gedge device show", devices},     {"gedge device rm", devices},
      {"gedge device rekey", devices},    {"gedge device check", devices},
      {"gedge device exec", devices},     {"gedge cluster show", clusters},
      {"gedge cluster status", clusters}, {"gedge cluster rm", clusters},
      {"gedge cluster export", clusters}, {"gedge cluster join", clusters},
      {"gedge cluster leave", clusters},  {"gedge cluster build", clusters},
      {"gedge runtime show", runtimes},   {"gedge runtime verify", runtimes},
      {"gedge runtime push", runtimes},   {"gedge runtime mounts", runtimes},
      {"gedge runtime check", runtimes},  {"gedge runtime rm", runtimes},
      {"gedge svc status", services},     {"gedge svc logs", services},
      {"gedge svc scale", services},      {"gedge svc rm", services},
      {"gedge svc autoscale", services},  {"gedge sched cancel", requests},
  };
  if (auto it = by_path.find(path); it != by_path.end()) return it->second(ctx);
  if (path == "gedge completion") return Candidates{{"bash", ""}, {"zsh", ""}, {"fish", ""}};
  return std::nullopt;
}

void add_options(const CLI::App* cmd, Candidates& out) {
  for (const CLI::Option* o : cmd->get_options()) {
    for (const auto& l : o->get_lnames()) out.emplace_back("--" + l, o->get_description());
    for (const auto& s : o->get_snames()) out.emplace_back("-" + s, o->get_description());
  }
}

}  // namespace

int complete_words(CLI::App& app, Ctx& ctx, std::vector<std::string> words) {
  if (words.empty()) words.emplace_back();
  std::string cur = words.back();
  words.pop_back();
  CLI::App* cmd = &app;
  std::string pending_flag;  // a value-taking flag waiting for its value
  bool after_dashdash = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") {
      after_dashdash = true;
      break;
    }
    if (w.size() > 1 && w[0] == '-') {
      std::string name = w.substr(0, w.find('='));
      const CLI::Option* o = nullptr;
      for (CLI::App* c = cmd; c != nullptr && o == nullptr; c = c->get_parent())
        o = c->get_option_no_throw(name);
      if (o != nullptr && takes_value(o) && w.find('=') == std::string::npos) {
        if (i + 1 == words.size())
          pending_flag = name;
        else if (name == "--home")
          ctx.g.home = words[i + 1];
        ++i;
      }
      if (name == "--home" && w.find('=') != std::string::npos)
        ctx.g.home = w.substr(w.find('=') + 1);
      continue;
    }
    auto subs = cmd->get_subcommands(
        [&](const CLI::App* a) { return !a->get_group().empty() && a->check_name(w); });
    if (!subs.empty()) cmd = subs.front();
  }
  Candidates all;
  std::string path = command_path(cmd);
  if (after_dashdash) return 0;  // a command for the device: files
  if (!pending_flag.empty()) {
    auto v = values_of(ctx, pending_flag, path);
    if (!v) return 0;
    all = *v;
  } else if (cur.starts_with("-")) {
    add_options(cmd, all);
    if (cmd != &app) add_options(&app, all);
  } else if (auto subs =
                 cmd->get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); });
             !subs.empty()) {
    for (const CLI::App* s : subs) all.emplace_back(s->get_name(), s->get_description());
    if (cmd == &app) all.emplace_back("help", "Help about any noun or verb");
  } else if (auto v = positional(ctx, path)) {
    all = *v;
  } else {
    return 0;
  }
  for (const auto& [value, desc] : all) {
    if (!value.starts_with(cur)) continue;
    std::string d = desc;
    for (char& ch : d)
      if (ch == '\t' || ch == '\n') ch = ' ';
    std::cout << value << (d.empty() ? "" : "\t" + d) << "\n";
  }
  return 0;
}

}  // namespace gedge::cli
