// svc catalog: the Docker Registry v2 API (GET /v2/_catalog, /v2/<repo>/tags/list) via libcurl —
// KETI's "services you can deploy" list. TLS is verified; plain HTTP only when asked (lab registry).
#include <curl/curl.h>
#include <fmt/format.h>

#include <regex>

#include "gedge/svc.hpp"

namespace gedge::svc {

namespace {

using nlohmann::json;

size_t write_body(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<std::string*>(ud);
  if (s->size() + size * n > (8u << 20)) return 0;  // a catalog is small; refuse a flood
  s->append(p, size * n);
  return size * n;
}

Result<json> get_json(const std::string& url, double timeout_s, const std::string& registry) {
  CURL* c = curl_easy_init();
  if (!c) return fail(ErrorCode::internal, "libcurl could not start");
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CONNECT_ERROR)
    return fail(ErrorCode::auth, fmt::format("registry {}: TLS verification failed: {}", registry, errbuf),
                "a plain-HTTP lab registry needs --plain-http");
  if (rc != CURLE_OK)
    return fail(ErrorCode::unreachable, fmt::format("registry {}: {}", registry, errbuf[0] ? errbuf : curl_easy_strerror(rc)),
                "is the registry running? (the lab: tests/lab/lab.sh up)");
  if (status == 401 || status == 403)
    return fail(ErrorCode::auth, fmt::format("registry {}: HTTP {} for {}", registry, status, url));
  if (status == 404) return fail(ErrorCode::not_found, fmt::format("registry {}: {} not found", registry, url));
  if (status < 200 || status >= 300)
    return fail(ErrorCode::failure, fmt::format("registry {}: HTTP {} for {}", registry, status, url));
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(ErrorCode::failure, fmt::format("registry {}: {} did not return a JSON object", registry, url));
  return j;
}

}  // namespace

Result<json> catalog(const std::string& registry, bool plain_http, double timeout_s) {
  static const std::regex re(R"([A-Za-z0-9.-]+(:[0-9]{1,5})?)");
  if (!std::regex_match(registry, re))
    return fail(ErrorCode::usage, fmt::format("invalid --registry '{}'", registry), "give HOST:PORT, e.g. 10.213.0.1:5000");
  std::string base = fmt::format("{}://{}/v2", plain_http ? "http" : "https", registry);
  json out = json::array();
  std::string next = base + "/_catalog?n=1000";
  std::vector<std::string> repos;
  for (int page = 0; page < 100 && !next.empty(); ++page) {
    GEDGE_TRY_ASSIGN(auto j, get_json(next, timeout_s, registry));
    auto list = j.value("repositories", json::array());
    if (!list.is_array()) return fail(ErrorCode::failure, fmt::format("registry {}: malformed _catalog", registry));
    for (const auto& r : list)
      if (r.is_string()) repos.push_back(r.get<std::string>());
    next = list.size() < 1000 || repos.empty() ? "" : fmt::format("{}/_catalog?n=1000&last={}", base, repos.back());
  }
  std::sort(repos.begin(), repos.end());
  static const std::regex repo_re(R"([a-z0-9]+([._/-][a-z0-9]+)*)");
  for (const auto& r : repos) {
    if (!std::regex_match(r, repo_re)) continue;  // never build a URL from a name the spec forbids
    GEDGE_TRY_ASSIGN(auto t, get_json(fmt::format("{}/{}/tags/list", base, r), timeout_s, registry));
    json tags = json::array();
    std::vector<std::string> ts;
    if (t.contains("tags") && t["tags"].is_array())
      for (const auto& x : t["tags"])
        if (x.is_string()) ts.push_back(x.get<std::string>());
    std::sort(ts.begin(), ts.end());
    for (const auto& x : ts) tags.push_back(x);
    json images = json::array();
    for (const auto& x : ts) images.push_back(fmt::format("{}/{}:{}", registry, r, x));
    out.push_back({{"repository", r}, {"tags", tags}, {"images", images}});
  }
  return out;
}

}  // namespace gedge::svc
