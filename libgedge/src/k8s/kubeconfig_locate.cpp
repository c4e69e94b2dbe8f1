// Where a kubeconfig comes from, as client-go finds it: --kubeconfig, else the KUBECONFIG list
// (merged), else ~/.kube/config, else the in-cluster service account; and a cluster's registered
// source. Parsing and resolving one: kubeconfig.cpp.
#include <fmt/format.h>

#include <cstdlib>
#include <set>

#include "gedge/k8s.hpp"
#include "kubeconfig_detail.hpp"

namespace gedge::k8s {
namespace fs = std::filesystem;
using namespace detail;
namespace {

std::string join_paths(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ":") + p;
  return out;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto colon = s.find(':', start);
    auto item = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!item.empty()) out.push_back(item);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

}  // namespace

Env process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
}

Result<Kubeconfig> load_kubeconfig_files(const std::vector<fs::path>& paths,
                                         const std::string& context, bool skip_missing) {
  std::vector<Doc> docs;
  std::vector<std::string> used;
  std::set<std::string> seen;
  for (const auto& p0 : paths) {
    std::error_code ec;
    fs::path p = fs::absolute(p0, ec).lexically_normal();
    if (!seen.insert(p.string()).second) continue;  // client-go reads a repeated file once
    if (!fs::exists(p, ec)) {
      if (skip_missing) continue;
      return fail(ErrorCode::not_found, fmt::format("kubeconfig '{}' not found", p.string()));
    }
    GEDGE_TRY_ASSIGN(auto text, read_small(p, "kubeconfig"));
    GEDGE_TRY_ASSIGN(auto d, parse_doc(text, p.string(), p.parent_path()));
    docs.push_back(std::move(d));
    used.push_back(p.string());
  }
  if (docs.empty())
    return fail(ErrorCode::not_found, "none of the kubeconfig files exists",
                "check KUBECONFIG, or pass --kubeconfig FILE");
  GEDGE_TRY_ASSIGN(auto cfg, merge_and_resolve(std::move(docs), context));
  cfg.paths = used;
  cfg.path = join_paths(used);
  return cfg;
}

Result<Kubeconfig> load_kubeconfig(const fs::path& path, const std::string& context) {
  GEDGE_TRY_ASSIGN(auto cfg, load_kubeconfig_files({path}, context));
  cfg.source = "flag";
  return cfg;
}

Result<Kubeconfig> load_in_cluster(const Env& env) {
  auto host = env("KUBERNETES_SERVICE_HOST");
  auto port = env("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty())
    return fail(ErrorCode::not_found,
                "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT unset)");
  for (char c : *port)
    if (c < '0' || c > '9')
      return fail(ErrorCode::usage,
                  fmt::format("KUBERNETES_SERVICE_PORT '{}' is not a port", *port));
  auto dir_env = env("GEDGE_K8S_SERVICEACCOUNT_DIR");
  fs::path dir = dir_env && !dir_env->empty()
                     ? fs::path(*dir_env)
                     : fs::path("/var/run/secrets/kubernetes.io/serviceaccount");
  Kubeconfig cfg;
  cfg.source = "in-cluster";
  cfg.path = "in-cluster";
  cfg.context = "";
  cfg.cluster = "in-cluster";
  cfg.user = "serviceaccount";
  std::string h = host->find(':') != std::string::npos ? "[" + *host + "]" : *host;
  cfg.server = fmt::format("https://{}:{}", h, *port);
  GEDGE_TRY_ASSIGN(auto tok, read_small(dir / "token", "service account token"));
  Doc d{(dir / "token").string(), dir, {}};
  GEDGE_TRY_ASSIGN(cfg.token, clean_token(std::move(tok), &d, {}, "the service account token"));
  GEDGE_TRY_ASSIGN(cfg.ca_pem, read_small(dir / "ca.crt", "service account CA"));
  auto ns = read_small(dir / "namespace", "service account namespace");
  cfg.namespace_ = ns ? *ns : "default";
  while (!cfg.namespace_.empty() &&
         (cfg.namespace_.back() == '\n' || cfg.namespace_.back() == '\r'))
    cfg.namespace_.pop_back();
  if (cfg.namespace_.empty()) cfg.namespace_ = "default";
  return cfg;
}

Result<Kubeconfig> resolve_kubeconfig(const std::string& flag, const std::string& context,
                                      const Env& env) {
  if (!flag.empty()) return load_kubeconfig(flag, context);
  if (auto kc = env("KUBECONFIG"); kc && !kc->empty()) {
    std::vector<fs::path> paths;
    for (const auto& p : split_list(*kc)) paths.emplace_back(p);
    auto cfg = load_kubeconfig_files(paths, context, /*skip_missing=*/true);
    if (cfg) cfg->source = "KUBECONFIG";
    if (cfg || cfg.error().code != ErrorCode::not_found) return cfg;
    auto ic = load_in_cluster(env);
    if (ic) return ic;
    return fail(ErrorCode::not_found, fmt::format("none of the KUBECONFIG files exists ({})", *kc),
                "fix KUBECONFIG, or pass --kubeconfig FILE");
  }
  if (auto home = env("HOME"); home && !home->empty()) {
    fs::path def = fs::path(*home) / ".kube" / "config";
    std::error_code ec;
    if (fs::exists(def, ec)) {
      GEDGE_TRY_ASSIGN(auto cfg, load_kubeconfig_files({def}, context));
      cfg.source = "default";
      return cfg;
    }
  }
  auto ic = load_in_cluster(env);
  if (ic) {
    if (!context.empty())
      return fail(
          ErrorCode::usage,
          fmt::format("--context '{}' given but no kubeconfig found (in-cluster has no contexts)",
                      context));
    return ic;
  }
  if (ic.error().code != ErrorCode::not_found) return ic;
  return fail(
      ErrorCode::not_found,
      "no kubeconfig: --kubeconfig not given, KUBECONFIG unset, no ~/.kube/config, not in a pod",
      "pass --kubeconfig FILE");
}

Result<Kubeconfig> load_registered(const std::string& stored, const std::string& context) {
  if (stored == "in-cluster") return load_in_cluster();
  std::vector<fs::path> paths;
  for (const auto& p : split_list(stored)) paths.emplace_back(p);
  GEDGE_TRY_ASSIGN(auto cfg, load_kubeconfig_files(paths, context));
  cfg.source = "registered";
  return cfg;
}

}  // namespace gedge::k8s
