// http: the one libcurl client and its one error classification, against tests/k8s_double (an
// API server DOUBLE on 127.0.0.1 with its own CA; only its TLS and HTTP matter here) and the
// CONNECT proxy of tests/e2e/connect_proxy.py.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>

#include "gedge/http.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using nlohmann::json;

namespace {

struct Helper : test::ReadyProcess {
  using ReadyProcess::ReadyProcess;
  std::string file(const std::string& name) { return read_file(dir.path / name).value_or(""); }
};

http::EnvLookup env_of(std::map<std::string, std::string> m) {
  return [m](const char* n) -> std::optional<std::string> {
    auto it = m.find(n);
    return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

}  // namespace

TEST_CASE("proxy_from_environment follows Go's net/http rules (kubectl's default)") {
  auto env = env_of(
      {{"HTTPS_PROXY", "proxy.corp:3128"},
       {"http_proxy", "http://plain.corp:80"},
       {"NO_PROXY", "internal.example, .svc.example,10.0.0.0/8 ,192.168.1.7, api.example:8443"}});
  CHECK(http::proxy_from_environment("https://k8s.example:6443", env) ==
        "http://proxy.corp:3128");  // scheme added
  CHECK(http::proxy_from_environment("http://k8s.example", env) == "http://plain.corp:80");
  CHECK(http::proxy_from_environment("https://internal.example", env).empty());  // the name
  CHECK(http::proxy_from_environment("https://a.internal.example", env)
            .empty());  // and its subdomains
  CHECK(http::proxy_from_environment("https://svc.example", env) ==
        "http://proxy.corp:3128");  // ".x": subdomains only
  CHECK(http::proxy_from_environment("https://a.svc.example", env).empty());
  CHECK(http::proxy_from_environment("https://10.1.2.3:6443", env).empty());  // CIDR
  CHECK(http::proxy_from_environment("https://192.168.1.7", env).empty());    // one address
  CHECK(http::proxy_from_environment("https://192.168.1.8", env) == "http://proxy.corp:3128");
  CHECK(http::proxy_from_environment("https://api.example:8443", env).empty());  // name with port
  CHECK(http::proxy_from_environment("https://api.example:6443", env) == "http://proxy.corp:3128");
  CHECK(http::proxy_from_environment("https://127.0.0.1:6443", env).empty());  // loopback never
  CHECK(http::proxy_from_environment("https://localhost:6443", env).empty());
  CHECK(http::proxy_from_environment("https://[::1]:6443", env).empty());
  CHECK(http::proxy_from_environment("https://k8s.example",
                                     env_of({{"https_proxy", "socks5://s:1080"}})) ==
        "socks5://s:1080");
  CHECK(http::proxy_from_environment("https://k8s.example",
                                     env_of({{"HTTPS_PROXY", "p:1"}, {"NO_PROXY", "*"}}))
            .empty());
  CHECK(http::proxy_from_environment("https://k8s.example", env_of({})).empty());
}

TEST_CASE("split_url and status_error") {
  auto hp = http::split_url("https://[::1]:6443/api");
  REQUIRE(hp.has_value());
  CHECK(hp->port == 6443);
  CHECK(http::split_url("http://h/x")->port == 80);
  CHECK(http::split_url("ftp://h/x").error().code == ErrorCode::usage);
  CHECK(http::status_error(401, "x").code == ErrorCode::auth);
  CHECK(http::status_error(403, "x").code == ErrorCode::auth);
  CHECK(http::status_error(404, "x").code == ErrorCode::not_found);
  CHECK(http::status_error(409, "x").code == ErrorCode::conflict);
  CHECK(http::status_error(422, "x").code == ErrorCode::usage);
  CHECK(http::status_error(500, "x", "boom").message == "x: HTTP 500: boom");
}

TEST_CASE("one classification: connect failure unreachable, TLS failure auth, interrupted") {
  http::Options o;
  o.timeout_s = 5;
  CHECK(http::get("http://127.0.0.1:1/", o).error().code == ErrorCode::unreachable);

  Helper dbl("tests/k8s_double/k8s_double.py --dir {dir}");
  std::string server = dbl.info["server"];
  // The system store does not know the double's CA: TLS failure, exit 6 (was exit 1 in metrics).
  auto r = http::get(server + "/version", o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::auth);
  CHECK(r.error().message.find("TLS") != std::string::npos);
  // With its CA: an HTTP answer (401 without a token), classified by status.
  o.tls.ca_pem = dbl.file("ca.crt");
  CHECK(http::get(server + "/version", o).error().code == ErrorCode::auth);
  http::Request req;
  req.url = server + "/version";
  req.headers = {"Authorization: Bearer double-admin-token"};
  auto ok = http::perform(req, o);
  REQUIRE(ok.has_value());
  CHECK(ok->status == 200);
  CHECK(json::parse(ok->body)["gitVersion"] == "v1.30.0-double");
  // A body over max_body fails rather than growing without bound.
  http::Options small = o;
  small.max_body = 10;
  CHECK(http::perform(req, small).error().code == ErrorCode::failure);
  // Streaming: the callback gets the body; returning false stops without an error.
  std::string got;
  req.on_data = [&](std::string_view d) {
    got.append(d);
    return false;
  };
  CHECK(http::perform(req, o).has_value());
  CHECK_FALSE(got.empty());
  req.on_data = nullptr;

  SUBCASE("tls-server-name: the name is sent as SNI and verified; a wrong one is auth") {
    http::Options n = o;
    n.tls.server_name = "api.double.test";
    auto good = http::perform(req, n);
    REQUIRE_MESSAGE(good.has_value(), (good ? "" : good.error().message));
    CHECK(good->status == 200);
    CHECK(dbl.file("sni.log").find("api.double.test") != std::string::npos);
    n.tls.server_name = "wrong.double.test";
    auto bad = http::perform(req, n);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == ErrorCode::auth);
    CHECK(bad.error().hint.find("wrong.double.test") != std::string::npos);
  }
  SUBCASE("proxies: a dead one is unreachable, a live one carries the tunnel") {
    http::Options p = o;
    p.proxy = "http://127.0.0.1:1";
    CHECK(http::perform(req, p).error().code == ErrorCode::unreachable);
    Helper proxy("tests/e2e/connect_proxy.py --log {dir}/proxy.log");
    p.proxy = fmt::format("http://127.0.0.1:{}", proxy.info["port"].get<int>());
    p.tls.server_name = "api.double.test";  // the CONNECT still goes to the real address
    auto via = http::perform(req, p);
    REQUIRE_MESSAGE(via.has_value(), (via ? "" : via.error().message));
    CHECK(via->status == 200);
    CHECK(proxy.file("proxy.log")
              .find(fmt::format("CONNECT 127.0.0.1:{}", dbl.info["port"].get<int>())) !=
          std::string::npos);
  }
  SUBCASE("Ctrl-C while a request runs ends it as interrupted") {
    request_cancel();
    auto c = http::perform(req, o);
    reset_cancel();
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == ErrorCode::interrupted);
  }
}
