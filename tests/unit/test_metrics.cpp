// Prometheus text parser and node-exporter scrapes (a real prometheus-node-exporter on 127.0.0.1).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>

#include "gedge/metrics.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using namespace gedge::metrics;

TEST_CASE("parse_text reads samples, labels, escapes, special values and comments") {
  const char* text =
      "# HELP node_load1 1m load average.\n"
      "# TYPE node_load1 gauge\n"
      "node_load1 0.25\n"
      "\n"
      "# a free comment\n"
      "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100.5\n"
      "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 20\n"
      "odd{path=\"C:\\\\x\",q=\"say \\\"hi\\\"\",nl=\"a\\nb\",} NaN\n"
      "inf_metric +Inf 1700000000000\n"
      "neg -Inf\n"
      "sci 1.5e+09\n";
  auto e = parse_text(text);
  REQUIRE(e);
  CHECK(e->samples.size() == 7);
  CHECK(e->types.at("node_load1") == "gauge");
  CHECK(e->help.at("node_load1") == "1m load average.");
  CHECK(e->value("node_load1") == doctest::Approx(0.25));
  CHECK(e->value("node_cpu_seconds_total", {{"mode", "user"}}) == doctest::Approx(20));
  CHECK(e->find("node_cpu_seconds_total").size() == 2);
  const auto* odd = e->find("odd").front();
  CHECK(odd->labels.at("path") == "C:\\x");
  CHECK(odd->labels.at("q") == "say \"hi\"");
  CHECK(odd->labels.at("nl") == "a\nb");
  CHECK(std::isnan(odd->value));
  CHECK(std::isinf(*e->value("inf_metric")));
  CHECK(e->find("inf_metric").front()->timestamp_ms == 1700000000000);
  CHECK(*e->value("neg") < 0);
  CHECK(e->value("sci") == doctest::Approx(1.5e9));
  CHECK_FALSE(e->value("missing"));
}

TEST_CASE("parse_text rejects malformed lines with their line number") {
  for (const char* bad : {"x{a=\"1\" 2\n", "x{a=1} 2\n", "x abc\n", "{a=\"1\"} 2\n",
                          "x{a=\"unterminated} 2\n", "x 1 notatime\n"}) {
    auto e = parse_text(std::string("ok 1\n") + bad);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == ErrorCode::usage);
    CHECK(e.error().message.find("line 2") != std::string::npos);
  }
}

TEST_CASE("summarize computes busy %, memory, load and disk") {
  auto before = parse_text(
      "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 100\n"
      "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 50\n"
      "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 100\n"
      "node_cpu_seconds_total{cpu=\"1\",mode=\"iowait\"} 0\n");
  auto now = parse_text(
      "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 101\n"
      "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 51\n"
      "node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 101\n"
      "node_cpu_seconds_total{cpu=\"1\",mode=\"iowait\"} 1\n"
      "node_memory_MemTotal_bytes 1000\n"
      "node_memory_MemAvailable_bytes 250\n"
      "node_load1 1.5\nnode_load5 1\nnode_load15 0.5\n"
      "node_filesystem_avail_bytes{mountpoint=\"/boot\"} 1\n"
      "node_filesystem_avail_bytes{mountpoint=\"/\"} 4096\n"
      "node_filesystem_size_bytes{mountpoint=\"/\"} 8192\n");
  REQUIRE(before);
  REQUIRE(now);
  auto s = summarize(*now, &*before);
  // 4 seconds elapsed in total, 3 of them idle or iowait -> 25 % busy.
  CHECK(*s.cpu_busy_percent == doctest::Approx(25.0));
  CHECK(s.cpus == 2);
  CHECK(*s.memory_used_bytes == doctest::Approx(750));
  CHECK(*s.load1 == doctest::Approx(1.5));
  CHECK(*s.disk_free_bytes == doctest::Approx(4096));
  CHECK(*s.disk_total_bytes == doctest::Approx(8192));
  auto j = s.to_json();
  CHECK(j["cpu_busy_percent"] == 25.0);
  CHECK(j["memory_total_bytes"] == 1000.0);
  CHECK(j["disk_mountpoint"] == "/");
  // An overlay root is not exported: the largest filesystem stands in, and says which it is.
  auto overlay = parse_text(
      "node_filesystem_avail_bytes{mountpoint=\"/etc/hosts\"} 10\n"
      "node_filesystem_size_bytes{mountpoint=\"/etc/hosts\"} 100\n"
      "node_filesystem_avail_bytes{mountpoint=\"/var/lib/containers\"} 500\n"
      "node_filesystem_size_bytes{mountpoint=\"/var/lib/containers\"} 1000\n");
  REQUIRE(overlay);
  auto o = summarize(*overlay);
  CHECK(o.disk_mountpoint == "/var/lib/containers");
  CHECK(*o.disk_free_bytes == doctest::Approx(500));
}

namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// A real prometheus-node-exporter on 127.0.0.1:<free port>, killed at scope exit.
struct NodeExporter {
  pid_t pid = -1;
  std::string url;
  NodeExporter() {
    int port = free_port();
    url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      const char* argv[] = {"prometheus-node-exporter", listen.c_str(), "--no-collector.systemd",
                            nullptr};
      ::execv("/usr/bin/prometheus-node-exporter", const_cast<char* const*>(argv));
      ::_exit(127);
    }
  }
  ~NodeExporter() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

}  // namespace

TEST_CASE("a real node-exporter's output parses and summarises") {
  if (!std::filesystem::exists("/usr/bin/prometheus-node-exporter")) {
    MESSAGE("prometheus-node-exporter not installed; skipped");
    return;
  }
  NodeExporter ne;
  Result<HttpResponse> r = fail(ErrorCode::unreachable, "not tried");
  for (int i = 0; i < 50 && !r; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    r = http_get(ne.url, 2.0);
  }
  REQUIRE_MESSAGE(r, r.error().message);
  auto e = parse_text(r->body);
  REQUIRE_MESSAGE(e, e.error().message);
  CHECK(e->samples.size() > 100);
  CHECK(e->types.at("node_cpu_seconds_total") == "counter");
  CHECK(e->value("node_memory_MemTotal_bytes").value_or(0) > 0);
  auto s = scrape_node(ne.url, 2.0, std::chrono::milliseconds(300));
  REQUIRE_MESSAGE(s, s.error().message);
  CHECK(s->cpus >= 1);
  REQUIRE(s->cpu_busy_percent);
  CHECK(*s->cpu_busy_percent >= 0.0);
  CHECK(*s->cpu_busy_percent <= 100.0);
  CHECK(*s->memory_used_bytes > 0);
  CHECK(*s->memory_used_bytes <= *s->memory_total_bytes);
  CHECK(s->load1.has_value());
  CHECK(s->disk_free_bytes.value_or(-1) >= 0);
}

TEST_CASE("a closed port is unreachable") {
  auto r = http_get("http://127.0.0.1:" + std::to_string(free_port()) + "/metrics", 1.0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::unreachable);
}

// ---- the Prometheus HTTP API ------------------------------------------------------------------

TEST_CASE("parse_prom_answer reads vectors, matrices, scalars and Prometheus' errors") {
  auto v = parse_prom_answer(R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"gedge_device":"edge1","job":"gedge"},"value":[1700000000.5,"12.5"]},
      {"metric":{"gedge_device":"edge2"},"value":[1700000000.5,"NaN"]}]}})");
  REQUIRE(v);
  REQUIRE(v->size() == 2);
  CHECK((*v)[0].labels.at("gedge_device") == "edge1");
  CHECK((*v)[0].points.front().first == doctest::Approx(1700000000.5));
  CHECK((*v)[0].points.front().second == doctest::Approx(12.5));
  CHECK(std::isnan((*v)[1].points.front().second));

  auto m = parse_prom_answer(R"({"status":"success","data":{"resultType":"matrix","result":[
      {"metric":{"gedge_device":"edge1"},"values":[[1,"1"],[61,"+Inf"],[121,"3e2"]]}]}})");
  REQUIRE(m);
  REQUIRE(m->front().points.size() == 3);
  CHECK(std::isinf(m->front().points[1].second));
  CHECK(m->front().points[2].second == doctest::Approx(300));

  auto s =
      parse_prom_answer(R"({"status":"success","data":{"resultType":"scalar","result":[5,"2"]}})");
  REQUIRE(s);
  CHECK(s->front().points.front().second == doctest::Approx(2));

  auto e = parse_prom_answer(
      R"({"status":"error","errorType":"bad_data","error":"parse error at char 3"})");
  REQUIRE_FALSE(e);
  CHECK(e.error().code == ErrorCode::failure);
  CHECK(e.error().message.find("parse error at char 3") != std::string::npos);
  CHECK_FALSE(parse_prom_answer("<html>"));
  CHECK_FALSE(parse_prom_answer(
      R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}})"));
}

TEST_CASE("query URLs percent-encode PromQL") {
  CHECK(query_escape("up{job=\"gedge\"} == 0") == "up%7Bjob%3D%22gedge%22%7D%20%3D%3D%200");
  CHECK(query_escape("a-b_c.d~") == "a-b_c.d~");
  CHECK(prom_query_url("http://h:9090", "up") == "http://h:9090/api/v1/query?query=up");
  CHECK(prom_range_url("http://h:9090", "up", 100, 200, 60) ==
        "http://h:9090/api/v1/query_range?query=up&start=100.000&end=200.000&step=60");
}

TEST_CASE("sparkline scales to the peak and leaves gaps blank") {
  CHECK(sparkline({0, 50, 100}) == "\u2581\u2585\u2588");
  CHECK(sparkline({0, std::nan(""), 10}) == "\u2581 \u2588");
  // A flat idle line stays low: the scale is at least `floor`.
  CHECK(sparkline({0.1, 0.1}, 10) == "\u2581\u2581");
  CHECK(sparkline({}).empty());
}

TEST_CASE("prom_query against a port nobody listens on is unreachable") {
  auto r = prom_query("http://127.0.0.1:1", "up", 2);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::unreachable);
}

TEST_CASE(
    "a scrape whose TLS fails is auth (exit 6), as everywhere else (gedge::http's one "
    "classification)") {
  // Before the shared client, metrics called every curl failure but connect/timeout a plain
  // failure (exit 1) while the catalog and the Kubernetes client said auth (exit 6).
  test::ReadyProcess tls_server(
      "tests/k8s_double/k8s_double.py --dir {dir}");  // a CA the system does not trust
  auto r = http_get(tls_server.info["server"].get<std::string>() + "/metrics", 5.0);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::auth);
}
