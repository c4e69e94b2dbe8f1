// The one libcurl set-up: TLS options in memory (never temporary files), explicit proxies,
// cancellation through the progress callback, and one classification of transport failures.
#include "gedge/http.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "gedge/report.hpp"
#include "gedge/text.hpp"

namespace gedge::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  CURL* h = nullptr;
  const Request* req = nullptr;
  std::string* body = nullptr;
  std::size_t max = 0;
  bool too_large = false;
  bool stopped = false;  // on_data asked to stop
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
  if (s->req->on_data && status >= 200 &&
      status < 300) {  // error answers are collected, not streamed
    if (!s->req->on_data(std::string_view(data, len))) {
      s->stopped = true;
      return 0;
    }
    return len;
  }
  if (s->body->size() + len > s->max) {
    s->too_large = true;
    return 0;
  }
  s->body->append(data, len);
  return len;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return cancel_requested() ? 1 : 0;
}

std::string strip_query(const std::string& url) {
  return url.substr(0, url.find('?'));
}

// The one classification of libcurl failures (see the header).
Error transport_error(CURLcode rc, const std::string& detail, const std::string& what,
                      const Options& opts) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CRL_BADFILE:
      return Error{
          ErrorCode::auth, fmt::format("{}: TLS failed: {}", what, detail),
          opts.tls.server_name.empty()
              ? "the server's certificate is not signed by the trusted CA or does not name this "
                "host"
              : fmt::format(
                    "the server's certificate must be valid for '{}' (tls-server-name) and signed "
                    "by the trusted CA",
                    opts.tls.server_name)};
    case CURLE_OPERATION_TIMEDOUT:
      return Error{ErrorCode::unreachable, fmt::format("{}: timed out ({})", what, detail),
                   "check the address, or raise --timeout"};
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PROXY:
      return Error{ErrorCode::unreachable,
                   fmt::format("{}: proxy {} failed: {}", what, opts.proxy, detail),
                   "check the proxy (kubeconfig proxy-url, HTTPS_PROXY/NO_PROXY)"};
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      if (!opts.proxy.empty())
        return Error{
            ErrorCode::unreachable,
            fmt::format("{}: cannot connect through proxy {}: {}", what, opts.proxy, detail),
            "check that the proxy runs and lets the connection through"};
      return Error{ErrorCode::unreachable, fmt::format("{}: cannot connect: {}", what, detail),
                   "check that the server is running and the address is right"};
    case CURLE_ABORTED_BY_CALLBACK:
      return Error{ErrorCode::interrupted, fmt::format("{}: interrupted", what), ""};
    default:
      return Error{ErrorCode::failure, fmt::format("{}: {}", what, detail), ""};
  }
}

std::string bracket(const std::string& host) {
  return host.find(':') != std::string::npos && !host.starts_with("[") ? "[" + host + "]" : host;
}

}  // namespace

Result<HostPort> split_url(const std::string& url) {
  std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    return fail(ErrorCode::usage, fmt::format("'{}' is not a URL", url));
  HostPort hp;
  auto part = [&](CURLUPart p, unsigned flags = 0) -> std::string {
    char* v = nullptr;
    if (curl_url_get(u.get(), p, &v, flags) != CURLUE_OK || !v) return {};
    std::string s(v);
    curl_free(v);
    return s;
  };
  hp.scheme = lower(part(CURLUPART_SCHEME));
  hp.host = part(CURLUPART_HOST);
  std::string port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if ((hp.scheme != "http" && hp.scheme != "https") || hp.host.empty())
    return fail(ErrorCode::usage, fmt::format("'{}' is not an http(s) URL", url));
  hp.port = port.empty() ? (hp.scheme == "https" ? 443 : 80) : std::atoi(port.c_str());
  return hp;
}

Result<Response> perform(const Request& req, const Options& opts, const std::string& what_in) {
  global_init();
  std::string what =
      what_in.empty() ? fmt::format("{} {}", req.method, strip_query(req.url)) : what_in;
  if (cancel_requested()) return fail(ErrorCode::interrupted, fmt::format("{}: interrupted", what));
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return fail(ErrorCode::internal, "libcurl could not start");
  CURL* h = curl.get();
  Response resp;
  Sink sink{h, &req, &resp.body, opts.max_body};
  char errbuf[CURL_ERROR_SIZE] = {0};

  std::string url = req.url;
  std::vector<std::string> headers = req.headers;
  curl_slist* connect_to = nullptr;
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold_ct(nullptr, curl_slist_free_all);
  if (!opts.tls.server_name.empty() && url.starts_with("https://")) {
    // tls-server-name: the request is addressed to the name (so libcurl sends it as SNI and
    // checks the certificate against it) while the TCP connection (or the proxy's CONNECT) still
    // goes to the real address, and the Host header keeps the real host, as Go does.
    GEDGE_TRY_ASSIGN(auto hp, split_url(url));
    std::unique_ptr<CURLU, void (*)(CURLU*)> u(curl_url(), curl_url_cleanup);
    curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
    if (curl_url_set(u.get(), CURLUPART_HOST, opts.tls.server_name.c_str(), 0) != CURLUE_OK)
      return fail(ErrorCode::usage,
                  fmt::format("tls-server-name '{}' is not a host name", opts.tls.server_name));
    char* nu = nullptr;
    curl_url_get(u.get(), CURLUPART_URL, &nu, 0);
    url = nu ? nu : url;
    curl_free(nu);
    connect_to =
        curl_slist_append(nullptr, fmt::format("{}:{}:{}:{}", bracket(opts.tls.server_name),
                                               hp.port, bracket(hp.host), hp.port)
                                       .c_str());
    hold_ct.reset(connect_to);
    bool has_host = std::any_of(headers.begin(), headers.end(), [](const std::string& x) {
      return lower(x.substr(0, 5)) == "host:";
    });
    if (!has_host) headers.push_back(fmt::format("Host: {}:{}", bracket(hp.host), hp.port));
  }

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (connect_to) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https,http");
  // Explicit proxy or none: libcurl's own reading of *_proxy variables is switched off by
  // always setting CURLOPT_PROXY ("" = direct).
  std::string proxy = opts.proxy;
  if (proxy.starts_with("socks5://"))
    proxy = "socks5h://" + proxy.substr(9);  // Go resolves at the proxy
  curl_easy_setopt(h, CURLOPT_PROXY, proxy.c_str());
  if (opts.timeout_s > 0)
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts.timeout_s * 1000));
  double ct = opts.connect_timeout_s;
  if (opts.timeout_s > 0) ct = std::min(ct, opts.timeout_s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(ct * 1000));

  curl_blob ca{}, cert{}, key{};
  if (!opts.tls.verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!opts.tls.ca_pem.empty()) {
      ca.data = const_cast<char*>(opts.tls.ca_pem.data());
      ca.len = opts.tls.ca_pem.size();
      ca.flags = CURL_BLOB_COPY;
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
      curl_easy_setopt(h, CURLOPT_CAPATH,
                       static_cast<char*>(nullptr));  // only the given CA, as client-go does
    }
  }
  if (!opts.tls.client_cert_pem.empty()) {
    cert.data = const_cast<char*>(opts.tls.client_cert_pem.data());
    cert.len = opts.tls.client_cert_pem.size();
    cert.flags = CURL_BLOB_COPY;
    key.data = const_cast<char*>(opts.tls.client_key_pem.data());
    key.len = opts.tls.client_key_pem.size();
    key.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
  }

  curl_slist* hl = nullptr;
  for (const auto& x : headers) hl = curl_slist_append(hl, x.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(hl, curl_slist_free_all);
  if (hl) curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  if (req.body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body->c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
  }

  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  if (char* ctype = nullptr;
      curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype)
    resp.content_type = ctype;
  if (rc == CURLE_WRITE_ERROR && sink.stopped) return resp;
  if (rc == CURLE_WRITE_ERROR && sink.too_large)
    return fail(ErrorCode::failure,
                fmt::format("{}: the answer is larger than {} bytes", what, opts.max_body));
  if (rc != CURLE_OK) {
    if (cancel_requested())
      return fail(ErrorCode::interrupted, fmt::format("{}: interrupted", what));
    return std::unexpected(
        transport_error(rc, errbuf[0] ? errbuf : curl_easy_strerror(rc), what, opts));
  }
  return resp;
}

Error status_error(long status, const std::string& what, const std::string& detail) {
  std::string text = detail.empty() ? fmt::format("{}: HTTP {}", what, status)
                                    : fmt::format("{}: HTTP {}: {}", what, status, detail);
  switch (status) {
    case 401:
    case 403:
      return Error{ErrorCode::auth, text, ""};
    case 404:
      return Error{ErrorCode::not_found, text, ""};
    case 409:
      return Error{ErrorCode::conflict, text, ""};
    case 400:
    case 415:
    case 422:
      return Error{ErrorCode::usage, text, ""};
    default:
      return Error{ErrorCode::failure, text, ""};
  }
}

Result<Response> get(const std::string& url, const Options& opts, const std::string& what) {
  Request req;
  req.url = url;
  GEDGE_TRY_ASSIGN(auto r, perform(req, opts, what));
  if (r.status < 200 || r.status >= 300)
    return std::unexpected(status_error(r.status, what.empty() ? "GET " + strip_query(url) : what));
  return r;
}

// ---- proxies as Go's golang.org/x/net/http/httpproxy decides them -------------------------------

namespace {

std::optional<std::string> env_any(const EnvLookup& env, const char* upper,
                                   const char* lower_name) {
  if (auto v = env(upper); v && !v->empty()) return v;
  if (auto v = env(lower_name); v && !v->empty()) return v;
  return std::nullopt;
}

// IPv4 or IPv6 text -> 16 bytes (IPv4 mapped), nullopt if not an address.
std::optional<std::array<unsigned char, 16>> parse_ip(std::string s) {
  if (s.starts_with("[") && s.ends_with("]")) s = s.substr(1, s.size() - 2);
  std::array<unsigned char, 16> out{};
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &a4, 4);
    return out;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(out.data(), &a6, 16);
    return out;
  }
  return std::nullopt;
}

bool is_v4(const std::array<unsigned char, 16>& a) {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), prefix, 12) == 0;
}

bool is_loopback(const std::array<unsigned char, 16>& a) {
  if (is_v4(a)) return a[12] == 127;
  static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(a.data(), one, 16) == 0;
}

bool in_cidr(const std::array<unsigned char, 16>& ip, const std::string& cidr) {
  auto slash = cidr.find('/');
  auto net = parse_ip(cidr.substr(0, slash));
  if (!net) return false;
  int bits = std::atoi(cidr.c_str() + slash + 1);
  if (is_v4(*net)) {
    if (!is_v4(ip)) return false;
    bits += 96;
  }
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((ip[i] & mask) != ((*net)[i] & mask)) return false;
  }
  return true;
}

// "host:port" / "[v6]:port" / "host" -> (host, port) with brackets removed.
std::pair<std::string, std::string> split_host_port(const std::string& s) {
  if (s.starts_with("[")) {
    auto close = s.find(']');
    if (close == std::string::npos) return {s, ""};
    std::string port = close + 1 < s.size() && s[close + 1] == ':' ? s.substr(close + 2) : "";
    return {s.substr(1, close - 1), port};
  }
  auto colon = s.find(':');
  if (colon != std::string::npos && s.find(':', colon + 1) == std::string::npos)
    return {s.substr(0, colon), s.substr(colon + 1)};
  return {s, ""};
}

bool no_proxy_matches(const std::string& no_proxy, const std::string& host_in,
                      const std::string& port) {
  std::string host = lower(host_in);
  auto ip = parse_ip(host);
  for (std::string entry : split_list(no_proxy, ',', " \t")) {
    entry = lower(entry);
    if (entry == "*") return true;
    if (entry.find('/') != std::string::npos) {
      if (ip && in_cidr(*ip, entry)) return true;
      continue;
    }
    auto [ehost, eport] = split_host_port(entry);
    if (auto eip = parse_ip(ehost)) {
      if (ip && *ip == *eip && (eport.empty() || eport == port)) return true;
      continue;
    }
    if (ehost.starts_with("*.")) ehost = ehost.substr(1);
    bool match_host = false;
    if (!ehost.starts_with(".")) {
      match_host = true;
      ehost = "." + ehost;
    }
    if ((host.ends_with(ehost) || (match_host && host == ehost.substr(1))) &&
        (eport.empty() || eport == port))
      return true;
  }
  return false;
}

}  // namespace

std::string proxy_from_environment(const std::string& url, const EnvLookup& env) {
  auto hp = split_url(url);
  if (!hp) return "";
  auto proxy = hp->scheme == "https" ? env_any(env, "HTTPS_PROXY", "https_proxy")
                                     : env_any(env, "HTTP_PROXY", "http_proxy");
  if (!proxy) return "";
  std::string host = hp->host;
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  if (lower(host) == "localhost") return "";
  if (auto ip = parse_ip(host); ip && is_loopback(*ip)) return "";
  if (auto np = env_any(env, "NO_PROXY", "no_proxy");
      np && no_proxy_matches(*np, host, std::to_string(hp->port)))
    return "";
  std::string p = *proxy;
  std::string ls = lower(p);
  if (!ls.starts_with("http://") && !ls.starts_with("https://") && !ls.starts_with("socks5://"))
    p = "http://" + p;
  return p;
}

std::string proxy_from_environment(const std::string& url) {
  return proxy_from_environment(url, [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
}

}  // namespace gedge::http
