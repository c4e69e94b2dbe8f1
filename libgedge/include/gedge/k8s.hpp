// Kubernetes client: kubeconfig loading and a small REST client over libcurl (TLS verified against
// the kubeconfig's CA), with discovery, get/list/delete and server-side apply.
//
// Error mapping (every call): HTTP 401/403 -> auth (exit 6), 404 -> not_found (4),
// 409 -> conflict (7), 400/422 -> usage (2), other HTTP errors -> failure (1),
// connect failure / timeout -> unreachable (5), TLS verification failure -> auth (6).
// The API server's Status message is carried in Error::message; tokens never appear in errors.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::k8s {

// A user's exec credential plugin (client.authentication.k8s.io/v1 or v1beta1).
struct ExecConfig {
  std::string api_version;  // client.authentication.k8s.io/v1 | v1beta1
  std::string command;      // as written; relative paths with a '/' made absolute
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // added to gedge's environment
  std::string interactive_mode;                          // Never | IfAvailable | Always
  bool provide_cluster_info = false;
  nlohmann::json cluster_info;  // ExecCredential spec.cluster (server, CA data, tls-server-name...)
  std::string install_hint;
  std::string where;  // "file:line" of the exec entry, for messages
};

// What a plugin returned; `expires` unset = valid for this whole run.
struct ExecCredentials {
  std::string token;
  std::string client_cert_pem, client_key_pem;
  std::optional<std::chrono::system_clock::time_point> expires;
};

// Runs the plugin by execve (no shell) with gedge's environment, the kubeconfig's env and
// KUBERNETES_EXEC_INFO; stdin is /dev/null unless interactiveMode allows a terminal and stdin is
// one. The credentials are cached in memory for this run until expirationTimestamp (never
// written anywhere); `refresh` runs it again (after a 401). A failing plugin is auth (exit 6)
// with its stderr; Ctrl-C is interrupted.
Result<ExecCredentials> exec_credentials(const ExecConfig& exec, double timeout_s,
                                         bool refresh = false);

// One resolved context of a kubeconfig: where the API server is and how to authenticate.
// Every kubeconfig field is honoured or refused by name (see kubeconfig.cpp); nothing is ignored.
struct Kubeconfig {
  std::string path;  // the source as stored by `cluster register`: the absolute file path(s)
                     // (several joined with ':' as KUBECONFIG), "in-cluster", "" from text
  std::vector<std::string> paths;  // the files merged, in precedence order (empty: in-cluster)
  std::string source;      // how it was found: "flag", "KUBECONFIG", "default" (~/.kube/config),
                           // "in-cluster", "registered", "text"
  std::string context;     // the context used
  std::string cluster;     // cluster entry name
  std::string user;        // user entry name
  std::string server;      // https://127.0.0.1:6443
  std::string namespace_;  // context namespace, "default" when unset
  std::string ca_pem;      // certificate-authority-data (decoded) or the CA file's contents
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // SNI and the name the server certificate must carry
  std::string proxy_url;        // http://, https:// or socks5:// ("" = HTTPS_PROXY/NO_PROXY rules)
  std::string token;            // bearer token (from `token` or `tokenFile`); never logged
  std::string client_cert_pem;  // client-certificate(-data)
  std::string client_key_pem;   // client-key(-data)
  std::optional<ExecConfig> exec;     // the credentials come from this plugin (run by the Client)
  std::vector<std::string> warnings;  // e.g. insecure-skip-tls-verify in use
};

// Environment lookup (tests pass their own; default: the process environment).
using Env = std::function<std::optional<std::string>(const char*)>;
Env process_env();

// Parses a kubeconfig file and resolves `context` (empty: current-context). Relative file
// references (certificate-authority, tokenFile, client-certificate, client-key) resolve against
// the kubeconfig's directory. usage for malformed files, unknown or refused fields (named, with
// file and line), or a missing context/cluster/user; not_found when the file is missing.
Result<Kubeconfig> load_kubeconfig(const std::filesystem::path& path,
                                   const std::string& context = "");
// Same, from text (tests). `base_dir` resolves relative file references.
Result<Kubeconfig> parse_kubeconfig(const std::string& text, const std::string& context,
                                    const std::filesystem::path& base_dir);
// Several files merged as client-go merges a KUBECONFIG list: the first file that defines a
// cluster, user or context name wins; current-context comes from the first file that sets it;
// each file's relative references resolve against its own directory. `skip_missing`: files that
// do not exist are skipped (KUBECONFIG), else not_found naming the file.
Result<Kubeconfig> load_kubeconfig_files(const std::vector<std::filesystem::path>& paths,
                                         const std::string& context, bool skip_missing = false);
// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT, the service account's token, ca.crt
// and namespace under GEDGE_K8S_SERVICEACCOUNT_DIR (default
// /var/run/secrets/kubernetes.io/serviceaccount).
Result<Kubeconfig> load_in_cluster(const Env& env = process_env());
// kubectl's order: `flag` (--kubeconfig) alone; else the KUBECONFIG list (merged); else
// ~/.kube/config; else in-cluster. `context` (--context) overrides current-context.
Result<Kubeconfig> resolve_kubeconfig(const std::string& flag, const std::string& context,
                                      const Env& env = process_env());
// A registered cluster's source as `cluster register` stored it (Kubeconfig::path): the file(s)
// (every one must still exist) or "in-cluster".
Result<Kubeconfig> load_registered(const std::string& stored, const std::string& context);

// Names of all contexts in a kubeconfig text, and the current one.
struct ContextList {
  std::vector<std::string> contexts;
  std::string current;
};
Result<ContextList> list_contexts(const std::string& text);

// Where a kind lives: found by discovery (GET /api/v1, /apis/<group>/<version>).
struct ResourceInfo {
  std::string api_version;  // "apps/v1"
  std::string kind;         // "Deployment"
  std::string plural;       // "deployments"
  bool namespaced = true;
};

struct ApplyOptions {
  std::string field_manager = "gedge";
  bool force = false;    // force=true: take ownership of conflicting fields
  bool dry_run = false;  // dryRun=All: the server validates, nothing is persisted
};

struct ClientOptions {
  double timeout_s = 30.0;  // per request (connect + transfer)
};

// A REST client for one kubeconfig context. Not thread-safe; cheap to create.
class Client {
 public:
  // Builds a client (no network). usage if the server URL is not http(s).
  static Result<Client> create(Kubeconfig cfg, ClientOptions opts = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  const Kubeconfig& config() const;

  // GET /version: {"major","minor","gitVersion",...}. Good as a reachability/auth check.
  Result<nlohmann::json> version();

  // Discovery (cached per client): the resource for apiVersion+kind. not_found for unknown kinds.
  Result<ResourceInfo> resource_for(const std::string& api_version, const std::string& kind);

  // URL path of a collection or object: /apis/apps/v1/namespaces/NS/deployments[/NAME].
  // `ns` is ignored for cluster-scoped kinds; empty `ns` on a namespaced kind = all namespaces.
  Result<std::string> path_for(const std::string& api_version, const std::string& kind,
                               const std::string& ns, const std::string& name = "");

  // GET one object; not_found when absent.
  Result<nlohmann::json> get(const std::string& api_version, const std::string& kind,
                             const std::string& ns, const std::string& name);
  // GET a list (ns empty = all namespaces); returns the List object ({"items": [...]}).
  // `label_selector` like "app=web".
  Result<nlohmann::json> list(const std::string& api_version, const std::string& kind,
                              const std::string& ns = "", const std::string& label_selector = "");
  // Server-side apply of one object (apiVersion, kind, metadata.name[, metadata.namespace]);
  // objects without metadata.namespace use the context namespace. Returns the object the server
  // returned. conflict (7) when another field manager owns a field and !opts.force.
  Result<nlohmann::json> apply(const nlohmann::json& object, const ApplyOptions& opts = {});
  // DELETE one object (propagationPolicy=Foreground); not_found when absent.
  Result<void> remove(const std::string& api_version, const std::string& kind,
                      const std::string& ns, const std::string& name, bool dry_run = false);

  // Raw request against a path ("/api/v1/nodes"); body/content type optional. Non-2xx statuses
  // become errors as above.
  Result<nlohmann::json> request(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const std::string& content_type = "");
  // GET `path`, handing the body of a 2xx answer to `on_data` as it arrives (no overall
  // timeout: a followed pod log runs until it ends or Ctrl-C, which is `interrupted`);
  // `on_data` returning false ends it without an error.
  Result<void> stream(const std::string& path,
                      const std::function<bool(std::string_view)>& on_data);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a path segment or query value.
std::string url_escape(const std::string& s);

// Maps an HTTP status and the server's Status body to a gedge Error (see the table above).
Error error_for_status(long http_status, const nlohmann::json& status_body,
                       const std::string& what);

}  // namespace gedge::k8s
