// svc catalog: the Docker Registry v2 API (GET /v2/_catalog, /v2/<repo>/tags/list) via libcurl —
// KETI's "services you can deploy" list, through gedge::http. TLS is verified; plain HTTP only
// when asked (lab registry).
#include <fmt/format.h>

#include <regex>

#include "gedge/http.hpp"
#include "gedge/svc.hpp"

namespace gedge::svc {

namespace {

using nlohmann::json;

Result<json> get_json(const std::string& url, double timeout_s, const std::string& registry) {
  http::Options o;
  o.timeout_s = timeout_s;
  o.connect_timeout_s = timeout_s;
  o.max_body = 8u << 20;  // a catalog is small; refuse a flood
  auto r = http::get(url, o, fmt::format("registry {}", registry));
  if (!r) {
    Error e = r.error();
    if (e.code == ErrorCode::auth && e.message.find("TLS") != std::string::npos)
      e.hint = "a plain-HTTP lab registry needs --plain-http";
    else if (e.code == ErrorCode::unreachable)
      e.hint = "is the registry running? (the lab: tests/lab/lab.sh up)";
    return std::unexpected(e);
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(ErrorCode::failure,
                fmt::format("registry {}: {} did not return a JSON object", registry, url));
  return j;
}

}  // namespace

Result<json> catalog(const std::string& registry, bool plain_http, double timeout_s) {
  static const std::regex re(R"([A-Za-z0-9.-]+(:[0-9]{1,5})?)");
  if (!std::regex_match(registry, re))
    return fail(ErrorCode::usage, fmt::format("invalid --registry '{}'", registry),
                "give HOST:PORT, e.g. 10.213.0.1:5000");
  std::string base = fmt::format("{}://{}/v2", plain_http ? "http" : "https", registry);
  json out = json::array();
  std::string next = base + "/_catalog?n=1000";
  std::vector<std::string> repos;
  for (int page = 0; page < 100 && !next.empty(); ++page) {
    GEDGE_TRY_ASSIGN(auto j, get_json(next, timeout_s, registry));
    auto list = j.value("repositories", json::array());
    if (!list.is_array())
      return fail(ErrorCode::failure, fmt::format("registry {}: malformed _catalog", registry));
    for (const auto& r : list)
      if (r.is_string()) repos.push_back(r.get<std::string>());
    next = list.size() < 1000 || repos.empty()
               ? ""
               : fmt::format("{}/_catalog?n=1000&last={}", base, repos.back());
  }
  std::sort(repos.begin(), repos.end());
  static const std::regex repo_re(R"([a-z0-9]+([._/-][a-z0-9]+)*)");
  for (const auto& r : repos) {
    if (!std::regex_match(r, repo_re)) continue;  // never build a URL from a name the spec forbids
    GEDGE_TRY_ASSIGN(auto t,
                     get_json(fmt::format("{}/{}/tags/list", base, r), timeout_s, registry));
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
