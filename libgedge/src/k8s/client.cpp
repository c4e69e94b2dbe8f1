// REST client over libcurl. TLS is verified against the kubeconfig's CA (in memory, never a
// temporary file); the bearer token goes in a header and never into a log or an error.
#include <curl/curl.h>
#include <fmt/format.h>

#include <map>
#include <mutex>

#include "gedge/k8s.hpp"
#include "gedge/report.hpp"

namespace gedge::k8s {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

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

}  // namespace

Error error_for_status(long http_status, const nlohmann::json& status_body, const std::string& what) {
  std::string msg;
  if (status_body.is_object() && status_body.contains("message") && status_body["message"].is_string())
    msg = status_body["message"].get<std::string>();
  std::string text = msg.empty() ? fmt::format("{}: HTTP {}", what, http_status)
                                 : fmt::format("{}: HTTP {}: {}", what, http_status, msg);
  switch (http_status) {
    case 401:
      return Error{ErrorCode::auth, text, "the kubeconfig's credentials were refused; check the token or client certificate"};
    case 403:
      return Error{ErrorCode::auth, text, "the kubeconfig's user lacks RBAC permission for this"};
    case 404:
      return Error{ErrorCode::not_found, text, ""};
    case 409:
      return Error{ErrorCode::conflict, text,
                   "another field manager owns these fields; re-run with --force-conflicts to take them over"};
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
  std::map<std::string, nlohmann::json> discovery;  // group/version -> APIResourceList
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

const Kubeconfig& Client::config() const { return impl_->cfg; }

Result<Client> Client::create(Kubeconfig cfg, ClientOptions opts) {
  if (!cfg.server.starts_with("https://") && !cfg.server.starts_with("http://"))
    return fail(ErrorCode::usage, fmt::format("kubeconfig server '{}' is not an http(s) URL", cfg.server));
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  global_init();
  auto impl = std::make_unique<Impl>();
  impl->cfg = std::move(cfg);
  impl->opts = opts;
  return Client(std::move(impl));
}

Result<nlohmann::json> Client::request(const std::string& method, const std::string& path,
                                       const std::string& body, const std::string& content_type) {
  if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
  const auto& cfg = impl_->cfg;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return fail(ErrorCode::internal, "curl_easy_init failed");
  CURL* h = curl.get();
  std::string url = cfg.server + path;
  std::string response;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");  // never route the API server through an env proxy
  long timeout_ms = static_cast<long>(impl_->opts.timeout_s * 1000);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10000L));
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");

  curl_blob ca{}, cert{}, key{};
  if (cfg.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!cfg.ca_pem.empty()) {
      ca.data = const_cast<char*>(cfg.ca_pem.data());
      ca.len = cfg.ca_pem.size();
      ca.flags = CURL_BLOB_COPY;
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
  }
  if (!cfg.client_cert_pem.empty()) {
    cert.data = const_cast<char*>(cfg.client_cert_pem.data());
    cert.len = cfg.client_cert_pem.size();
    cert.flags = CURL_BLOB_COPY;
    key.data = const_cast<char*>(cfg.client_key_pem.data());
    key.len = cfg.client_key_pem.size();
    key.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
  }

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "User-Agent: gedge");
  std::string auth;
  if (!cfg.token.empty()) {
    auth = "Authorization: Bearer " + cfg.token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::string ct;
  if (!content_type.empty()) {
    ct = "Content-Type: " + content_type;
    headers = curl_slist_append(headers, ct.c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(headers, curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }

  CURLcode rc = curl_easy_perform(h);
  std::string what = fmt::format("{} {}", method, path);
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CONNECT_ERROR:
        return fail(ErrorCode::auth,
                    fmt::format("TLS verification of {} failed: {}", cfg.server, detail),
                    "the kubeconfig's certificate-authority does not match the API server's certificate");
      case CURLE_OPERATION_TIMEDOUT:
        return fail(ErrorCode::unreachable,
                    fmt::format("{}: timed out after {}s ({})", cfg.server, impl_->opts.timeout_s, detail),
                    "check the server address or raise --timeout");
      default:
        return fail(ErrorCode::unreachable, fmt::format("cannot reach {}: {}", cfg.server, detail),
                    "check that the API server is running and the kubeconfig's server address");
    }
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  nlohmann::json j = nlohmann::json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (status < 200 || status >= 300) return std::unexpected(error_for_status(status, j, what));
  if (j.is_discarded()) {
    if (response.empty()) return nlohmann::json::object();
    return fail(ErrorCode::failure, fmt::format("{}: the server's reply is not JSON", what));
  }
  return j;
}

Result<nlohmann::json> Client::version() { return request("GET", "/version"); }

Result<ResourceInfo> Client::resource_for(const std::string& api_version, const std::string& kind) {
  auto it = impl_->discovery.find(api_version);
  if (it == impl_->discovery.end()) {
    std::string p = api_version.find('/') == std::string::npos ? "/api/" + api_version
                                                                 : "/apis/" + api_version;
    auto r = request("GET", p);
    if (!r) {
      if (r.error().code == ErrorCode::not_found)
        return fail(ErrorCode::not_found,
                    fmt::format("the API server does not serve {} (needed for {})", api_version, kind),
                    kind == "ServiceMonitor" ? "install the Prometheus operator CRDs, or drop monitorPorts"
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
  std::string p = api_version.find('/') == std::string::npos ? "/api/" + api_version
                                                               : "/apis/" + api_version;
  if (info.namespaced && !ns.empty()) p += "/namespaces/" + url_escape(ns);
  p += "/" + info.plural;
  if (!name.empty()) p += "/" + url_escape(name);
  return p;
}

Result<nlohmann::json> Client::get(const std::string& api_version, const std::string& kind,
                                   const std::string& ns, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto p, path_for(api_version, kind, ns.empty() ? impl_->cfg.namespace_ : ns, name));
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
  GEDGE_TRY_ASSIGN(auto p, path_for(api_version, kind, ns.empty() ? impl_->cfg.namespace_ : ns, name));
  p += "?propagationPolicy=Foreground";
  if (dry_run) p += "&dryRun=All";
  GEDGE_TRY(request("DELETE", p));
  return {};
}

}  // namespace gedge::k8s
