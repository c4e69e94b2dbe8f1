// Kubeconfig parsing: clusters, users, contexts; CA data or file; token or tokenFile; client
// certificate and key (data or file). Only what gedge needs; exec/auth-provider plugins are
// rejected with a clear message rather than silently ignored.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "gedge/k8s.hpp"
#include "gedge/paths.hpp"

namespace gedge::k8s {
namespace {

Result<std::string> base64_decode(const std::string& in, const std::string& what) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto pos = chars.find(c);
    if (pos == std::string::npos)
      return fail(ErrorCode::usage, fmt::format("kubeconfig: {} is not valid base64", what));
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

const YAML::Node find_named(const YAML::Node& list, const std::string& name) {
  if (list && list.IsSequence())
    for (const auto& item : list)
      if (item.IsMap() && item["name"] && item["name"].as<std::string>("") == name) return item;
  return YAML::Node();
}

std::string str(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key] || !n[key].IsScalar()) return {};
  return n[key].as<std::string>("");
}

// Reads a file referenced by the kubeconfig (relative to its directory).
Result<std::string> read_ref(const std::filesystem::path& base, const std::string& file,
                             const std::string& what) {
  std::filesystem::path p(file);
  if (p.is_relative()) p = base / p;
  auto r = read_file(p);
  if (!r)
    return fail(ErrorCode::usage, fmt::format("kubeconfig: cannot read {} '{}'", what, p.string()),
                "fix the path in the kubeconfig");
  return *r;
}

// data (base64) or file.
Result<std::string> data_or_file(const YAML::Node& n, const char* data_key, const char* file_key,
                                 const std::filesystem::path& base, const std::string& what) {
  auto data = str(n, data_key);
  if (!data.empty()) return base64_decode(data, what);
  auto file = str(n, file_key);
  if (!file.empty()) return read_ref(base, file, what);
  return std::string();
}

}  // namespace

Result<ContextList> list_contexts(const std::string& text) {
  ContextList out;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return fail(ErrorCode::usage, "kubeconfig: not a YAML mapping");
    out.current = str(root, "current-context");
    if (root["contexts"] && root["contexts"].IsSequence())
      for (const auto& c : root["contexts"]) out.contexts.push_back(str(c, "name"));
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("kubeconfig: malformed YAML: {}", e.what()));
  }
  return out;
}

Result<Kubeconfig> parse_kubeconfig(const std::string& text, const std::string& context,
                                    const std::filesystem::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("kubeconfig: malformed YAML: {}", e.what()));
  }
  if (!root.IsMap()) return fail(ErrorCode::usage, "kubeconfig: not a YAML mapping");
  try {
    Kubeconfig cfg;
    cfg.context = context.empty() ? str(root, "current-context") : context;
    if (cfg.context.empty())
      return fail(ErrorCode::usage, "kubeconfig: no context given and no current-context set",
                  "pass --context NAME");
    auto ctx = find_named(root["contexts"], cfg.context);
    if (!ctx || !ctx["context"].IsMap())
      return fail(ErrorCode::usage, fmt::format("kubeconfig: context '{}' not found", cfg.context));
    cfg.cluster = str(ctx["context"], "cluster");
    cfg.user = str(ctx["context"], "user");
    cfg.namespace_ = str(ctx["context"], "namespace");
    if (cfg.namespace_.empty()) cfg.namespace_ = "default";

    auto cl = find_named(root["clusters"], cfg.cluster);
    if (!cl || !cl["cluster"].IsMap())
      return fail(ErrorCode::usage, fmt::format("kubeconfig: cluster '{}' (of context '{}') not found",
                                                cfg.cluster, cfg.context));
    auto c = cl["cluster"];
    cfg.server = str(c, "server");
    if (cfg.server.empty())
      return fail(ErrorCode::usage, fmt::format("kubeconfig: cluster '{}' has no server", cfg.cluster));
    cfg.insecure_skip_tls_verify = str(c, "insecure-skip-tls-verify") == "true";
    GEDGE_TRY_ASSIGN(cfg.ca_pem, data_or_file(c, "certificate-authority-data", "certificate-authority",
                                        base_dir, "certificate-authority"));
    if (cfg.insecure_skip_tls_verify)
      cfg.warnings.push_back(fmt::format(
          "kubeconfig cluster '{}' sets insecure-skip-tls-verify: the API server's certificate is "
          "NOT verified",
          cfg.cluster));

    if (!cfg.user.empty()) {
      auto us = find_named(root["users"], cfg.user);
      if (!us)
        return fail(ErrorCode::usage, fmt::format("kubeconfig: user '{}' (of context '{}') not found",
                                                  cfg.user, cfg.context));
      auto u = us["user"];
      if (u && u.IsMap()) {
        if (u["exec"] || u["auth-provider"])
          return fail(ErrorCode::usage,
                      fmt::format("kubeconfig: user '{}' uses an exec/auth-provider plugin, which "
                                  "gedge does not run",
                                  cfg.user),
                      "use a kubeconfig with a token, tokenFile or client certificate");
        cfg.token = str(u, "token");
        if (cfg.token.empty() && !str(u, "tokenFile").empty()) {
          GEDGE_TRY_ASSIGN(cfg.token, read_ref(base_dir, str(u, "tokenFile"), "tokenFile"));
          while (!cfg.token.empty() && (cfg.token.back() == '\n' || cfg.token.back() == '\r'))
            cfg.token.pop_back();
        }
        GEDGE_TRY_ASSIGN(cfg.client_cert_pem, data_or_file(u, "client-certificate-data",
                                                     "client-certificate", base_dir,
                                                     "client-certificate"));
        GEDGE_TRY_ASSIGN(cfg.client_key_pem, 
            data_or_file(u, "client-key-data", "client-key", base_dir, "client-key"));
        if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty())
          return fail(ErrorCode::usage,
                      fmt::format("kubeconfig: user '{}' has a client certificate without a key "
                                  "(or a key without a certificate)",
                                  cfg.user));
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("kubeconfig: {}", e.what()));
  }
}

Result<Kubeconfig> load_kubeconfig(const std::filesystem::path& path, const std::string& context) {
  auto text = read_file(path);
  if (!text)
    return fail(ErrorCode::not_found, fmt::format("kubeconfig '{}' not found", path.string()));
  GEDGE_TRY_ASSIGN(auto cfg, parse_kubeconfig(*text, context, path.parent_path()));
  cfg.path = path.string();
  return cfg;
}

}  // namespace gedge::k8s
