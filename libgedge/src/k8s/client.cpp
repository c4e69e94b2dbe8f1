// REST client over the one HTTP client (gedge_http). TLS is verified against the kubeconfig's CA
// (in memory, never a temporary file) and tls-server-name; proxy-url or HTTPS_PROXY/NO_PROXY as
// kubectl; the bearer token goes in a header and never into a log or an error.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "gedge/http.hpp"
#include "gedge/k8s.hpp"
#include "gedge/report.hpp"

namespace gedge::k8s {

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

Error error_for_status(long http_status, const nlohmann::json& status_body,
                       const std::string& what) {
  std::string msg;
  if (status_body.is_object() && status_body.contains("message") &&
      status_body["message"].is_string())
    msg = status_body["message"].get<std::string>();
  std::string text = msg.empty() ? fmt::format("{}: HTTP {}", what, http_status)
                                 : fmt::format("{}: HTTP {}: {}", what, http_status, msg);
  switch (http_status) {
    case 401:
      return Error{
          ErrorCode::auth, text,
          "the kubeconfig's credentials were refused; check the token or client certificate"};
    case 403:
      return Error{ErrorCode::auth, text, "the kubeconfig's user lacks RBAC permission for this"};
    case 404:
      return Error{ErrorCode::not_found, text, ""};
    case 409:
      return Error{ErrorCode::conflict, text,
                   "another field manager owns these fields; re-run with --force-conflicts to take "
                   "them over"};
    case 400:
    case 415:
    case 422:
      return Error{ErrorCode::usage, text, ""};
    default:
      return Error{ErrorCode::failure, text, ""};
  }
}

struct Client::Impl {
  Kubeconfig cfg;
  ClientOptions opts;
  http::Options http;
  std::map<std::string, nlohmann::json> discovery;  // group/version -> APIResourceList
  bool have_exec_creds = false;

  // An exec plugin's credentials, fetched before the first request (and again after a 401).
  Result<void> exec_creds(bool refresh) {
    if (!cfg.exec || (have_exec_creds && !refresh)) return {};
    GEDGE_TRY_ASSIGN(auto c, exec_credentials(*cfg.exec, opts.timeout_s, refresh));
    if (!c.token.empty() && cfg.server.starts_with("http://"))
      return fail(ErrorCode::usage,
                  fmt::format("exec plugin '{}': a bearer token would be sent in clear text to {}",
                              cfg.exec->command, cfg.server),
                  "use an https:// server");
    cfg.token = c.token;
    http.tls.client_cert_pem = c.client_cert_pem;
    http.tls.client_key_pem = c.client_key_pem;
    have_exec_creds = true;
    return {};
  }

  std::vector<std::string> headers(const std::string& content_type) const {
    std::vector<std::string> h{"Accept: application/json", "User-Agent: gedge"};
    if (!cfg.token.empty()) h.push_back("Authorization: Bearer " + cfg.token);
    if (!content_type.empty()) h.push_back("Content-Type: " + content_type);
    return h;
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

const Kubeconfig& Client::config() const {
  return impl_->cfg;
}

Result<Client> Client::create(Kubeconfig cfg, ClientOptions opts) {
  if (!cfg.server.starts_with("https://") && !cfg.server.starts_with("http://"))
    return fail(ErrorCode::usage,
                fmt::format("kubeconfig server '{}' is not an http(s) URL", cfg.server));
  if (!cfg.token.empty() && cfg.server.starts_with("http://"))
    return fail(ErrorCode::usage,
                fmt::format("a bearer token would be sent in clear text to {}", cfg.server),
                "use an https:// server");
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  auto impl = std::make_unique<Impl>();
  impl->http.timeout_s = opts.timeout_s;
  impl->http.connect_timeout_s = std::min(opts.timeout_s, 10.0);
  impl->http.tls.verify = !cfg.insecure_skip_tls_verify;
  impl->http.tls.ca_pem = cfg.ca_pem;
  impl->http.tls.server_name = cfg.tls_server_name;
  impl->http.tls.client_cert_pem = cfg.client_cert_pem;
  impl->http.tls.client_key_pem = cfg.client_key_pem;
  // proxy-url wins; else kubectl's HTTPS_PROXY/NO_PROXY rules.
  impl->http.proxy =
      !cfg.proxy_url.empty() ? cfg.proxy_url : http::proxy_from_environment(cfg.server);
  impl->cfg = std::move(cfg);
  impl->opts = opts;
  return Client(std::move(impl));
}

Result<nlohmann::json> Client::request(const std::string& method, const std::string& path,
                                       const std::string& body, const std::string& content_type) {
  const auto& cfg = impl_->cfg;
  http::Request req;
  req.method = method;
  req.url = cfg.server + path;
  req.headers = impl_->headers(content_type);
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") req.body = body;
  std::string what = fmt::format("{} {}", method, path.substr(0, path.find('?')));
  GEDGE_TRY(impl_->exec_creds(false));
  req.headers = impl_->headers(content_type);
  GEDGE_TRY_ASSIGN(auto resp,
                   http::perform(req, impl_->http, fmt::format("{} ({})", what, cfg.server)));
  if (resp.status == 401 &&
      cfg.exec) {  // as client-go: the plugin's credential may have been revoked
    GEDGE_TRY(impl_->exec_creds(true));
    req.headers = impl_->headers(content_type);
    GEDGE_TRY_ASSIGN(resp,
                     http::perform(req, impl_->http, fmt::format("{} ({})", what, cfg.server)));
  }
  nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, /*allow_exceptions=*/false);
  if (resp.status < 200 || resp.status >= 300)
    return std::unexpected(error_for_status(resp.status, j, what));
  if (j.is_discarded()) {
    if (resp.body.empty()) return nlohmann::json::object();
    return fail(ErrorCode::failure, fmt::format("{}: the server's reply is not JSON", what));
  }
  return j;
}

Result<void> Client::stream(const std::string& path,
                            const std::function<bool(std::string_view)>& on_data) {
  const auto& cfg = impl_->cfg;
  GEDGE_TRY(impl_->exec_creds(false));
  http::Request req;
  req.url = cfg.server + path;
  req.headers = impl_->headers("");
  req.headers[0] = "Accept: */*";
  req.on_data = on_data;
  http::Options o = impl_->http;
  o.timeout_s = 0;  // a followed log runs until it ends or Ctrl-C
  std::string what = fmt::format("GET {}", path.substr(0, path.find('?')));
  GEDGE_TRY_ASSIGN(auto resp, http::perform(req, o, fmt::format("{} ({})", what, cfg.server)));
  if (resp.status < 200 || resp.status >= 300) {
    nlohmann::json j = nlohmann::json::parse(resp.body, nullptr, false);
    return std::unexpected(error_for_status(resp.status, j, what));
  }
  return {};
}

Result<nlohmann::json> Client::version() {
  return request("GET", "/version");
}

Result<ResourceInfo> Client::resource_for(const std::string& api_version, const std::string& kind) {
  auto it = impl_->discovery.find(api_version);
  if (it == impl_->discovery.end()) {
    std::string p =
        api_version.find('/') == std::string::npos ? "/api/" + api_version : "/apis/" + api_version;
    auto r = request("GET", p);
    if (!r) {
      if (r.error().code == ErrorCode::not_found)
        return fail(
            ErrorCode::not_found,
            fmt::format("the API server does not serve {} (needed for {})", api_version, kind),
            kind == "ServiceMonitor" ? "install the Prometheus operator CRDs, or drop monitorPorts"
            : kind == "VerticalPodAutoscaler"
                ? "install the Vertical Pod Autoscaler (its CRDs), or drop vpa"
                : "");
      return std::unexpected(r.error());
    }
    it = impl_->discovery.emplace(api_version, *r).first;
  }
  const auto& list = it->second;
  if (list.contains("resources") && list["resources"].is_array())
    for (const auto& res : list["resources"]) {
      if (res.value("kind", "") != kind) continue;
      std::string name = res.value("name", "");
      if (name.find('/') != std::string::npos) continue;  // subresource
      return ResourceInfo{api_version, kind, name, res.value("namespaced", true)};
    }
  return fail(ErrorCode::not_found,
              fmt::format("the API server does not serve kind {} in {}", kind, api_version));
}

Result<std::string> Client::path_for(const std::string& api_version, const std::string& kind,
                                     const std::string& ns, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto info, resource_for(api_version, kind));
  std::string p =
      api_version.find('/') == std::string::npos ? "/api/" + api_version : "/apis/" + api_version;
  if (info.namespaced && !ns.empty()) p += "/namespaces/" + url_escape(ns);
  p += "/" + info.plural;
  if (!name.empty()) p += "/" + url_escape(name);
  return p;
}

Result<nlohmann::json> Client::get(const std::string& api_version, const std::string& kind,
                                   const std::string& ns, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto p,
                   path_for(api_version, kind, ns.empty() ? impl_->cfg.namespace_ : ns, name));
  return request("GET", p);
}

Result<nlohmann::json> Client::list(const std::string& api_version, const std::string& kind,
                                    const std::string& ns, const std::string& label_selector) {
  GEDGE_TRY_ASSIGN(auto p, path_for(api_version, kind, ns));
  if (!label_selector.empty()) p += "?labelSelector=" + url_escape(label_selector);
  return request("GET", p);
}

Result<nlohmann::json> Client::apply(const nlohmann::json& object, const ApplyOptions& opts) {
  if (!object.is_object() || !object.contains("apiVersion") || !object.contains("kind") ||
      !object.contains("metadata") || !object["metadata"].contains("name"))
    return fail(ErrorCode::usage, "apply: the object needs apiVersion, kind and metadata.name");
  std::string api_version = object["apiVersion"].get<std::string>();
  std::string kind = object["kind"].get<std::string>();
  std::string name = object["metadata"]["name"].get<std::string>();
  GEDGE_TRY_ASSIGN(auto info, resource_for(api_version, kind));
  nlohmann::json obj = object;
  std::string ns;
  if (info.namespaced) {
    ns = obj["metadata"].value("namespace", "");
    if (ns.empty()) {
      ns = impl_->cfg.namespace_;
      obj["metadata"]["namespace"] = ns;
    }
  }
  GEDGE_TRY_ASSIGN(auto p, path_for(api_version, kind, ns, name));
  p += "?fieldManager=" + url_escape(opts.field_manager);
  if (opts.force) p += "&force=true";
  if (opts.dry_run) p += "&dryRun=All";
  // JSON is YAML: the apply content type accepts it as is.
  return request("PATCH", p, obj.dump(), "application/apply-patch+yaml");
}

Result<void> Client::remove(const std::string& api_version, const std::string& kind,
                            const std::string& ns, const std::string& name, bool dry_run) {
  GEDGE_TRY_ASSIGN(auto p,
                   path_for(api_version, kind, ns.empty() ? impl_->cfg.namespace_ : ns, name));
  p += "?propagationPolicy=Foreground";
  if (dry_run) p += "&dryRun=All";
  GEDGE_TRY(request("DELETE", p));
  return {};
}

}  // namespace gedge::k8s
