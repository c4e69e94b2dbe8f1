// Kubeconfig loading as client-go does it: --kubeconfig, else the KUBECONFIG list (merged: the
// first file that names a cluster/user/context wins, current-context from the first that sets
// it), else ~/.kube/config, else the in-cluster service account. Every field is honoured or
// refused by name with its file and line; nothing is silently ignored. exec plugins: exec.cpp;
// finding the files (KUBECONFIG, ~/.kube/config, in-cluster): kubeconfig_locate.cpp.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <map>
#include <set>

#include "gedge/document.hpp"
#include "gedge/k8s.hpp"
#include "gedge/paths.hpp"
#include "kubeconfig_detail.hpp"

namespace gedge::k8s {
namespace fs = std::filesystem;
using detail::clean_token;
using detail::Doc;
using detail::merge_and_resolve;
using detail::parse_doc;
using detail::read_small;

namespace {

constexpr std::size_t kMaxFile = 4u << 20;  // a kubeconfig, CA, key or token file

Result<std::string> base64_decode(const std::string& in, const std::string& what) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    auto pos = chars.find(c);
    if (pos == std::string::npos)
      return fail(ErrorCode::usage, fmt::format("{} is not valid base64", what));
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

}  // namespace

// A regular file of bounded size (a FIFO or /dev/zero would hang or grow without end).
Result<std::string> detail::read_small(const fs::path& p, const std::string& what) {
  return read_input_file(p, kMaxFile, what);
}

namespace {

// An entry found by name, with the file it came from.
struct Entry {
  YAML::Node node;  // the inner map (cluster:, user:, context:)
  const Doc* doc = nullptr;
  YAML::Node named;  // the list item (for its line)
};

std::string where(const Doc* d, const YAML::Node& n) {
  std::string file = d && !d->file.empty() ? d->file : "kubeconfig";
  if (n && n.Mark().line >= 0) return fmt::format("{}:{}", file, n.Mark().line + 1);
  return file;
}

Error bad(const Doc* d, const YAML::Node& n, const std::string& msg, const std::string& hint = "") {
  return Error{ErrorCode::usage, fmt::format("{}: {}", where(d, n), msg), hint};
}

std::string str(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key] || !n[key].IsScalar()) return {};
  return n[key].as<std::string>("");
}

// Every key of `map` must be in `known`; `refused` names fields gedge understands but will not use.
Result<void> check_fields(const Doc* d, const YAML::Node& map, const std::string& what,
                          const std::set<std::string>& known,
                          const std::map<std::string, std::string>& refused = {}) {
  if (!map) return {};
  if (!map.IsMap()) return std::unexpected(bad(d, map, fmt::format("{} is not a mapping", what)));
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string k = it->first.as<std::string>("");
    if (auto r = refused.find(k); r != refused.end())
      return std::unexpected(bad(
          d, it->first, fmt::format("{}: field '{}' is not supported: {}", what, k, r->second)));
    if (!known.contains(k))
      return std::unexpected(
          bad(d, it->first, fmt::format("{}: unknown field '{}'", what, k),
              "gedge refuses kubeconfig fields it does not understand rather than ignore them"));
  }
  return {};
}

Result<std::string> read_ref(const Doc* d, const YAML::Node& at, const std::string& file,
                             const std::string& what) {
  fs::path p(file);
  if (p.is_relative()) p = d->base / p;
  auto r = read_small(p, what);
  if (!r) return std::unexpected(bad(d, at, r.error().message, "fix the path in the kubeconfig"));
  return *r;
}

// field-data (base64) or field (a file).
Result<std::string> data_or_file(const Doc* d, const YAML::Node& n, const char* data_key,
                                 const char* file_key) {
  auto data = str(n, data_key);
  if (!data.empty()) {
    auto r = base64_decode(data, data_key);
    if (!r) return std::unexpected(bad(d, n[data_key], r.error().message));
    return *r;
  }
  auto file = str(n, file_key);
  if (!file.empty()) return read_ref(d, n[file_key], file, file_key);
  return std::string();
}

}  // namespace

// A bearer token as it may go into a header: one trailing newline trimmed, no control
// characters (a multi-line file would otherwise become header lines).
Result<std::string> detail::clean_token(std::string t, const Doc* d, const YAML::Node& at,
                                        const std::string& what) {
  if (t.ends_with("\r\n"))
    t.resize(t.size() - 2);
  else if (t.ends_with("\n"))
    t.pop_back();
  for (unsigned char c : t)
    if (c < 0x20 || c == 0x7f)
      return std::unexpected(
          bad(d, at, fmt::format("{} contains control characters (a line break?)", what),
              "a token is one line; fix the file"));
  return t;
}

namespace {

std::string base64_encode(const std::string& in) {
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(chars[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(chars[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

// YAML -> JSON for an exec plugin's cluster config (scalars stay strings, as YAML gives them).
nlohmann::json to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return nullptr;
  if (n.IsScalar()) return n.as<std::string>("");
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : n) a.push_back(to_json(x));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();
  for (auto it = n.begin(); it != n.end(); ++it)
    o[it->first.as<std::string>("")] = to_json(it->second);
  return o;
}

const std::set<std::string> kExec = {
    "apiVersion", "command", "args", "env", "installHint", "provideClusterInfo", "interactiveMode"};

Result<ExecConfig> parse_exec(const Doc* d, const YAML::Node& x, const std::string& uwhat,
                              const Kubeconfig& cfg, const YAML::Node& cluster) {
  std::string what = uwhat + ": exec";
  GEDGE_TRY(check_fields(d, x, what, kExec));
  ExecConfig e;
  e.where = where(d, x);
  e.api_version = str(x, "apiVersion");
  if (e.api_version == "client.authentication.k8s.io/v1alpha1")
    return std::unexpected(bad(d, x["apiVersion"],
                               what +
                                   ": apiVersion client.authentication.k8s.io/v1alpha1 was removed "
                                   "from Kubernetes 1.24; use v1 or v1beta1"));
  if (e.api_version != "client.authentication.k8s.io/v1" &&
      e.api_version != "client.authentication.k8s.io/v1beta1")
    return std::unexpected(
        bad(d, x,
            fmt::format("{}: apiVersion '{}' must be client.authentication.k8s.io/v1 or v1beta1",
                        what, e.api_version)));
  e.command = str(x, "command");
  if (e.command.empty()) return std::unexpected(bad(d, x, what + ": command is required"));
  if (e.command.find('/') != std::string::npos && fs::path(e.command).is_relative())
    e.command = (d->base / e.command).lexically_normal().string();
  if (x["args"]) {
    if (!x["args"].IsSequence())
      return std::unexpected(bad(d, x["args"], what + ": args must be a list of strings"));
    for (const auto& a : x["args"]) {
      if (!a.IsScalar())
        return std::unexpected(bad(d, a, what + ": args must be a list of strings"));
      e.args.push_back(a.as<std::string>(""));
    }
  }
  if (x["env"] && !x["env"].IsNull()) {
    if (!x["env"].IsSequence())
      return std::unexpected(bad(d, x["env"], what + ": env must be a list of {name, value}"));
    for (const auto& v : x["env"]) {
      GEDGE_TRY(check_fields(d, v, what + ": env entry", {"name", "value"}));
      if (str(v, "name").empty())
        return std::unexpected(bad(d, v, what + ": an env entry has no name"));
      e.env.emplace_back(str(v, "name"), str(v, "value"));
    }
  }
  e.install_hint = str(x, "installHint");
  e.interactive_mode = str(x, "interactiveMode");
  if (e.interactive_mode.empty()) {
    if (e.api_version.ends_with("/v1"))
      return std::unexpected(
          bad(d, x,
              what + ": interactiveMode is required for client.authentication.k8s.io/v1 "
                     "(Never, IfAvailable or Always)"));
    e.interactive_mode = "IfAvailable";
  }
  if (e.interactive_mode != "Never" && e.interactive_mode != "IfAvailable" &&
      e.interactive_mode != "Always")
    return std::unexpected(
        bad(d, x["interactiveMode"],
            fmt::format("{}: interactiveMode '{}' must be Never, IfAvailable or Always", what,
                        e.interactive_mode)));
  std::string pci = str(x, "provideClusterInfo");
  if (!pci.empty() && pci != "true" && pci != "false")
    return std::unexpected(
        bad(d, x["provideClusterInfo"], what + ": provideClusterInfo must be true or false"));
  e.provide_cluster_info = pci == "true";
  if (e.provide_cluster_info) {
    nlohmann::json ci = {{"server", cfg.server}};
    if (!cfg.tls_server_name.empty()) ci["tls-server-name"] = cfg.tls_server_name;
    if (cfg.insecure_skip_tls_verify) ci["insecure-skip-tls-verify"] = true;
    if (!cfg.ca_pem.empty()) ci["certificate-authority-data"] = base64_encode(cfg.ca_pem);
    if (!cfg.proxy_url.empty()) ci["proxy-url"] = cfg.proxy_url;
    const YAML::Node exts = cluster["extensions"];
    if (exts && exts.IsSequence())
      for (const auto& ext : exts)
        if (str(ext, "name") == "client.authentication.k8s.io/exec")
          ci["config"] = to_json(ext["extension"]);
    e.cluster_info = ci;
  }
  return e;
}

const std::set<std::string> kTop = {"apiVersion", "kind",     "preferences",     "clusters",
                                    "users",      "contexts", "current-context", "extensions"};
const std::set<std::string> kCluster = {"server",
                                        "tls-server-name",
                                        "insecure-skip-tls-verify",
                                        "certificate-authority",
                                        "certificate-authority-data",
                                        "proxy-url",
                                        "disable-compression",
                                        "extensions"};
const std::set<std::string> kUser = {"client-certificate",
                                     "client-certificate-data",
                                     "client-key",
                                     "client-key-data",
                                     "token",
                                     "tokenFile",
                                     "exec",
                                     "extensions"};
const std::map<std::string, std::string> kUserRefused = {
    {"auth-provider",
     "auth-provider plugins were removed from client-go; use an exec plugin or a token"},
    {"as", "impersonation is not supported"},
    {"as-uid", "impersonation is not supported"},
    {"as-groups", "impersonation is not supported"},
    {"as-user-extra", "impersonation is not supported"},
    {"username", "basic authentication is not supported (removed from Kubernetes 1.19)"},
    {"password", "basic authentication is not supported (removed from Kubernetes 1.19)"}};
const std::set<std::string> kContext = {"cluster", "user", "namespace", "extensions"};

struct Merged {
  std::vector<Doc> docs;
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current;
  const Doc* current_doc = nullptr;
};

Result<void> add_doc(Merged& m, std::size_t idx) {
  const Doc* d = &m.docs[idx];
  const auto& root = d->root;
  if (!root || root.IsNull()) return {};  // an empty file contributes nothing
  if (!root.IsMap()) return std::unexpected(bad(d, root, "not a YAML mapping"));
  GEDGE_TRY(check_fields(d, root, "kubeconfig", kTop));
  if (m.current.empty() && !str(root, "current-context").empty()) {
    m.current = str(root, "current-context");
    m.current_doc = d;
  }
  struct Kind {
    const char* list;
    const char* inner;
    std::map<std::string, Entry>* into;
  };
  for (const Kind& k : {Kind{"clusters", "cluster", &m.clusters}, Kind{"users", "user", &m.users},
                        Kind{"contexts", "context", &m.contexts}}) {
    const YAML::Node list = root[k.list];
    if (!list || list.IsNull()) continue;
    if (!list.IsSequence())
      return std::unexpected(bad(d, list, fmt::format("{} is not a list", k.list)));
    for (const auto& item : list) {
      GEDGE_TRY(check_fields(d, item, fmt::format("{} entry", k.list), {"name", k.inner}));
      std::string name = str(item, "name");
      if (name.empty())
        return std::unexpected(bad(d, item, fmt::format("a {} entry has no name", k.inner)));
      k.into->emplace(name, Entry{item[k.inner], d, item});  // the first file wins
    }
  }
  return {};
}

Result<Kubeconfig> resolve(const Merged& m, const std::string& context) {
  Kubeconfig cfg;
  const Doc* first = m.docs.empty() ? nullptr : &m.docs.front();
  cfg.context = context.empty() ? m.current : context;
  if (cfg.context.empty())
    return fail(ErrorCode::usage,
                fmt::format("{}: no context given and no current-context set", where(first, {})),
                "pass --context NAME");
  auto ci = m.contexts.find(cfg.context);
  if (ci == m.contexts.end() || !ci->second.node || !ci->second.node.IsMap())
    return fail(ErrorCode::usage,
                fmt::format("{}: context '{}' not found", where(first, {}), cfg.context),
                "kubectl config get-contexts lists them");
  const Doc* cd = ci->second.doc;
  auto ctx = ci->second.node;
  GEDGE_TRY(check_fields(cd, ctx, fmt::format("context '{}'", cfg.context), kContext));
  cfg.cluster = str(ctx, "cluster");
  cfg.user = str(ctx, "user");
  cfg.namespace_ = str(ctx, "namespace");
  if (cfg.namespace_.empty()) cfg.namespace_ = "default";

  auto cli = m.clusters.find(cfg.cluster);
  if (cli == m.clusters.end() || !cli->second.node || !cli->second.node.IsMap())
    return std::unexpected(
        bad(cd, ci->second.named,
            fmt::format("cluster '{}' (of context '{}') not found", cfg.cluster, cfg.context)));
  const Doc* kd = cli->second.doc;
  auto c = cli->second.node;
  std::string cwhat = fmt::format("cluster '{}'", cfg.cluster);
  GEDGE_TRY(check_fields(kd, c, cwhat, kCluster));
  cfg.server = str(c, "server");
  if (cfg.server.empty())
    return std::unexpected(bad(kd, cli->second.named, cwhat + " has no server"));
  if (!cfg.server.starts_with("https://") && !cfg.server.starts_with("http://"))
    return std::unexpected(bad(
        kd, c["server"], fmt::format("{}: server '{}' is not an http(s) URL", cwhat, cfg.server)));
  std::string insecure = str(c, "insecure-skip-tls-verify");
  if (!insecure.empty() && insecure != "true" && insecure != "false")
    return std::unexpected(bad(kd, c["insecure-skip-tls-verify"],
                               cwhat + ": insecure-skip-tls-verify must be true or false"));
  cfg.insecure_skip_tls_verify = insecure == "true";
  cfg.tls_server_name = str(c, "tls-server-name");
  cfg.proxy_url = str(c, "proxy-url");
  if (!cfg.proxy_url.empty() && !cfg.proxy_url.starts_with("http://") &&
      !cfg.proxy_url.starts_with("https://") && !cfg.proxy_url.starts_with("socks5://"))
    return std::unexpected(
        bad(kd, c["proxy-url"],
            fmt::format("{}: proxy-url '{}' must be http://, https:// or socks5://", cwhat,
                        cfg.proxy_url)));
  GEDGE_TRY_ASSIGN(cfg.ca_pem,
                   data_or_file(kd, c, "certificate-authority-data", "certificate-authority"));
  if (cfg.insecure_skip_tls_verify && !cfg.ca_pem.empty())
    return std::unexpected(bad(
        kd, c["insecure-skip-tls-verify"],
        cwhat + ": insecure-skip-tls-verify together with a certificate-authority is not allowed "
                "(client-go refuses it too)"));
  if (cfg.insecure_skip_tls_verify)
    cfg.warnings.push_back(
        fmt::format("kubeconfig cluster '{}' sets insecure-skip-tls-verify: the API server's "
                    "certificate is NOT verified",
                    cfg.cluster));

  if (!cfg.user.empty()) {
    auto ui = m.users.find(cfg.user);
    if (ui == m.users.end())
      return std::unexpected(
          bad(cd, ci->second.named,
              fmt::format("user '{}' (of context '{}') not found", cfg.user, cfg.context)));
    const Doc* ud = ui->second.doc;
    auto u = ui->second.node;
    std::string uwhat = fmt::format("user '{}'", cfg.user);
    if (u && !u.IsNull()) {
      GEDGE_TRY(check_fields(ud, u, uwhat, kUser, kUserRefused));
      if (!str(u, "token").empty()) {
        GEDGE_TRY_ASSIGN(cfg.token,
                         clean_token(str(u, "token"), ud, u["token"], uwhat + ": token"));
      } else if (!str(u, "tokenFile").empty()) {
        GEDGE_TRY_ASSIGN(auto raw, read_ref(ud, u["tokenFile"], str(u, "tokenFile"), "tokenFile"));
        GEDGE_TRY_ASSIGN(
            cfg.token, clean_token(std::move(raw), ud, u["tokenFile"],
                                   fmt::format("{}: tokenFile '{}'", uwhat, str(u, "tokenFile"))));
      }
      GEDGE_TRY_ASSIGN(cfg.client_cert_pem,
                       data_or_file(ud, u, "client-certificate-data", "client-certificate"));
      GEDGE_TRY_ASSIGN(cfg.client_key_pem, data_or_file(ud, u, "client-key-data", "client-key"));
      if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty())
        return std::unexpected(bad(
            ud, ui->second.named,
            uwhat + " has a client certificate without a key (or a key without a certificate)"));
      if (u["exec"]) {
        if (!cfg.token.empty() || !cfg.client_cert_pem.empty())
          return std::unexpected(bad(ud, u["exec"],
                                     uwhat +
                                         ": exec together with a token or client certificate is "
                                         "ambiguous; keep one"));
        GEDGE_TRY_ASSIGN(cfg.exec, parse_exec(ud, u["exec"], uwhat, cfg, c));
      }
      if (!cfg.token.empty() && cfg.server.starts_with("http://"))
        return std::unexpected(bad(
            ud, ui->second.named,
            fmt::format("{}: a bearer token would be sent in clear text to {}", uwhat, cfg.server),
            "use an https:// server"));
    }
  }
  return cfg;
}

}  // namespace

Result<Doc> detail::parse_doc(const std::string& text, const std::string& file,
                              const fs::path& base) {
  Doc d{file, base, {}};
  try {
    d.root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("{}: malformed YAML: {}",
                                              file.empty() ? "kubeconfig" : file, e.what()));
  }
  return d;
}

Result<Kubeconfig> detail::merge_and_resolve(std::vector<Doc> docs, const std::string& context) {
  Merged m;
  m.docs = std::move(docs);
  try {
    for (std::size_t i = 0; i < m.docs.size(); ++i) GEDGE_TRY(add_doc(m, i));
    return resolve(m, context);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::usage, fmt::format("kubeconfig: {}", e.what()));
  }
}

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
                                    const fs::path& base_dir) {
  GEDGE_TRY_ASSIGN(auto d, parse_doc(text, "", base_dir));
  std::vector<Doc> docs;
  docs.push_back(std::move(d));
  GEDGE_TRY_ASSIGN(auto cfg, merge_and_resolve(std::move(docs), context));
  cfg.source = "text";
  return cfg;
}

}  // namespace gedge::k8s
