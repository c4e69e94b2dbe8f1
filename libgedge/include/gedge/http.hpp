// The one HTTP client over libcurl, with the one error classification every caller shares
// (metrics scrapes, the registry catalog and probe, the Kubernetes client, Prometheus):
//
//   TLS failure (unknown CA, wrong name, bad client certificate)   -> auth (exit 6)
//   cannot resolve/connect, timeout, proxy refused or unreachable  -> unreachable (5)
//   Ctrl-C while the request runs                                  -> interrupted (130)
//   an answer larger than Options::max_body, anything else         -> failure (1)
//
// HTTP statuses are not errors here: perform() returns the Response and the caller decides,
// usually with status_error() (401/403 auth, 404 not_found, 409 conflict, 400/415/422 usage,
// others failure). Proxies are never taken from the environment implicitly: a caller that wants
// kubectl's rules asks proxy_from_environment() and passes the result.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::http {

struct TlsOptions {
  bool verify = true;           // false: neither the chain nor the name is checked (callers warn)
  std::string ca_pem;           // trust only these CAs (PEM, kept in memory); "": the system store
  std::string server_name;      // SNI and the name the certificate must carry, instead of the
                                // URL's host (kubeconfig tls-server-name); the Host header keeps
                                // the URL's host
  std::string client_cert_pem;  // client certificate and key (PEM, in memory), both or neither
  std::string client_key_pem;
};

struct Options {
  double timeout_s = 30;          // the whole request; 0 = no limit (streams)
  double connect_timeout_s = 10;  // TCP + TLS (+ proxy) set-up
  std::string proxy;              // http://, https:// or socks5:// (names resolved by the proxy,
                                  // as Go does); "" = connect directly
  TlsOptions tls;
  std::size_t max_body = 64u << 20;  // longer answers fail (a scrape or catalog is small)
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  // Streaming: the body of a 2xx answer goes here as it arrives instead of into Response::body
  // (other answers are still collected, for the error); returning false ends the request early
  // without an error.
  std::function<bool(std::string_view)> on_data;
};

struct Response {
  long status = 0;
  std::string body;
  std::string content_type;
};

// One request. Errors are transport failures only (see the table above); `what` names the
// target in messages ("registry 10.213.0.1:5000"; default: the URL without its query).
Result<Response> perform(const Request& req, const Options& opts = {},
                         const std::string& what = "");

// GET `url` and require a 2xx answer (other statuses through status_error).
Result<Response> get(const std::string& url, const Options& opts = {},
                     const std::string& what = "");

// The error for a non-2xx HTTP status: 401/403 auth, 404 not_found, 409 conflict,
// 400/415/422 usage, others failure. `detail` (a server message) is appended when not empty.
Error status_error(long status, const std::string& what, const std::string& detail = "");

// The proxy Go's net/http (kubectl's default transport) would use for `url`, given the
// environment read through `env` (HTTPS_PROXY/https_proxy for https URLs, HTTP_PROXY/http_proxy
// for http, NO_PROXY/no_proxy exclusions: "*", host names with their subdomains, ".domain",
// IP addresses, CIDR ranges, optional ":port"); localhost and loopback addresses are never
// proxied. A proxy value without a scheme gets "http://". "" = direct.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
std::string proxy_from_environment(const std::string& url, const EnvLookup& env);
// The same with the process environment.
std::string proxy_from_environment(const std::string& url);

// Host and port of an http(s) URL ("[::1]" keeps its brackets; the port defaults from the
// scheme). usage for anything else.
struct HostPort {
  std::string scheme, host;
  int port = 0;
};
Result<HostPort> split_url(const std::string& url);

}  // namespace gedge::http
