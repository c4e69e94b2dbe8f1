#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "gedge/config.hpp"
#include "gedge/digest.hpp"
#include "gedge/error.hpp"
#include "gedge/output.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"
#include "gedge/text.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using nlohmann::json;

TEST_CASE("every error code maps to the exit status DESIGN.md documents") {
  CHECK(exit_code_for(ErrorCode::failure) == 1);
  CHECK(exit_code_for(ErrorCode::internal) == 1);
  CHECK(exit_code_for(ErrorCode::usage) == 2);
  CHECK(exit_code_for(ErrorCode::partial) == 3);
  CHECK(exit_code_for(ErrorCode::not_found) == 4);
  CHECK(exit_code_for(ErrorCode::unreachable) == 5);
  CHECK(exit_code_for(ErrorCode::auth) == 6);
  CHECK(exit_code_for(ErrorCode::host_key) == 6);
  CHECK(exit_code_for(ErrorCode::conflict) == 7);
  CHECK(exit_code_for(ErrorCode::interrupted) == 130);
}

namespace {
Result<int> half(int x) {
  if (x % 2) return fail(ErrorCode::usage, "odd");
  return x / 2;
}
Result<int> quarter(int x) {
  GEDGE_TRY_ASSIGN(int h, half(x));
  GEDGE_TRY_ASSIGN(int q, half(h));
  return q;
}
}  // namespace

TEST_CASE("GEDGE_TRY propagates the first error and passes values through") {
  CHECK(quarter(8).value() == 2);
  auto r = quarter(6);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::usage);
  CHECK(r.error().message == "odd");
}

TEST_CASE("error_json carries name, exit code, message and hint") {
  auto j = error_json(Error{ErrorCode::not_found, "device 'x' not found", "gedge device ls"});
  CHECK(j["error"] == "not_found");
  CHECK(j["code"] == 4);
  CHECK(j["message"] == "device 'x' not found");
  CHECK(j["hint"] == "gedge device ls");
  CHECK_FALSE(error_json(Error{ErrorCode::failure, "x", ""}).contains("hint"));
}

TEST_CASE("parse_format accepts the three formats and rejects others as usage errors") {
  CHECK(parse_format("table").value() == Format::table);
  CHECK(parse_format("json").value() == Format::json);
  CHECK(parse_format("yaml").value() == Format::yaml);
  auto bad = parse_format("xml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::usage);
}

TEST_CASE("the renderer prints one typed result as table, json and yaml") {
  View v;
  v.data = json::array(
      {{{"name", "cam-1"}, {"facts", {{"cpus", 4}}}, {"labels", {{"zone", "a"}}}},
       {{"name", "cam-22"}, {"facts", {{"cpus", nullptr}}}, {"labels", json::object()}}});
  v.columns = {{"name", "/name"}, {"cpus", "/facts/cpus"}, {"labels", "/labels"}};

  SUBCASE("table aligns columns, shows null as '-', upper-cases headers") {
    std::ostringstream out;
    render(v, {Format::table, false}, out);
    CHECK(out.str() ==
          "NAME     CPUS   LABELS\n"
          "cam-1    4      zone=a\n"
          "cam-22   -      -\n");
  }
  SUBCASE("json is the data itself") {
    std::ostringstream out;
    render(v, {Format::json, false}, out);
    CHECK(json::parse(out.str()) == v.data);
  }
  SUBCASE("yaml round-trips through a YAML parser to the same structure") {
    std::ostringstream out;
    render(v, {Format::yaml, false}, out);
    YAML::Node n = YAML::Load(out.str());
    REQUIRE(n.IsSequence());
    CHECK(n[0]["name"].as<std::string>() == "cam-1");
    CHECK(n[0]["facts"]["cpus"].as<int>() == 4);
    CHECK(n[0]["labels"]["zone"].as<std::string>() == "a");
    CHECK(n[1]["facts"]["cpus"].IsNull());
  }
}

TEST_CASE("tables never send a device's control characters to the terminal (issue 16 item 13)") {
  // A hostname / OS name with a terminal escape (clear screen, retitle) and a C1 CSI.
  View v;
  v.data = json::array({{{"name", "h1"},
                         {"os",
                          "Deb\x1b[2J\x1b]0;pwned\x07ian\tx\xc2\x9b"
                          "31m"}}});
  v.columns = {{"name", "/name"}, {"os", "/os"}};
  std::ostringstream out;
  render(v, {Format::table, false}, out);
  CHECK(out.str() == "NAME   OS\nh1     Deb\\x1b[2J\\x1b]0;pwned\\x07ian x\\u009b31m\n");
  View kv;
  kv.data = {{"hostname", "evil\x1b[31m"}};
  std::ostringstream out2;
  render(kv, {Format::table, false}, out2);
  CHECK(out2.str() == "hostname:  evil\\x1b[31m\n");
  std::ostringstream js;  // JSON keeps the bytes (escaped by JSON itself)
  render(v, {Format::json, false}, js);
  CHECK(json::parse(js.str())[0]["os"] == v.data[0]["os"]);
}

TEST_CASE("yaml quotes strings that YAML would read as other types") {
  json j{{"a", "true"}, {"b", "1.5"},  {"c", "plain"},
         {"d", ""},     {"e", "null"}, {"f", "line1\nline2"}};
  std::string y = to_yaml(j);
  CHECK(y.find("a: \"true\"") != std::string::npos);
  CHECK(y.find("b: \"1.5\"") != std::string::npos);
  CHECK(y.find("c: plain") != std::string::npos);
  CHECK(y.find("d: \"\"") != std::string::npos);
  CHECK(y.find("e: \"null\"") != std::string::npos);
  CHECK(y.find("f: |") != std::string::npos);
}

TEST_CASE("cell_text renders scalars and collections for table cells") {
  CHECK(cell_text(json(nullptr)) == "-");
  CHECK(cell_text(json(2.0)) == "2");
  CHECK(cell_text(json(2.456)) == "2.46");
  CHECK(cell_text(json::array({"a", "b"})) == "a,b");
  CHECK(cell_text(json(true)) == "true");
}

TEST_CASE("paths: --home beats GEDGE_HOME beats XDG_DATA_HOME beats HOME") {
  ::setenv("HOME", "/h", 1);
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  ::setenv("GEDGE_HOME", "/g", 1);
  CHECK(resolve_paths(std::string("/flag"))->home == "/flag");
  CHECK(resolve_paths(std::nullopt)->home == "/g");
  ::unsetenv("GEDGE_HOME");
  CHECK(resolve_paths(std::nullopt)->home == "/xdg/gedge");
  ::unsetenv("XDG_DATA_HOME");
  auto p = resolve_paths(std::nullopt).value();
  CHECK(p.home == "/h/.local/share/gedge");
  CHECK(p.db == "/h/.local/share/gedge/gedge.db");
  CHECK(p.key == "/h/.local/share/gedge/id_ed25519");
  CHECK(p.config_file == "/h/.config/gedge/config.yaml");
}

TEST_CASE("ensure_home creates the home 0700 and tightens a loose one") {
  test::TempDir tmp;
  auto p = resolve_paths((tmp.path / "home").string()).value();
  REQUIRE(ensure_home(p));
  struct stat st {};
  REQUIRE(::stat(p.home.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  ::chmod(p.home.c_str(), 0755);
  REQUIRE(ensure_home(p));
  REQUIRE(::stat(p.home.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(std::filesystem::is_directory(p.log_dir));
}

TEST_CASE("write_file_atomic writes with the requested mode and replaces atomically") {
  test::TempDir tmp;
  auto f = tmp.path / "x";
  REQUIRE(write_file_atomic(f, "one", 0600));
  REQUIRE(write_file_atomic(f, "two", 0600));
  CHECK(read_file(f).value() == "two");
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(read_file(tmp.path / "missing").error().code == ErrorCode::not_found);
  // no temp files left behind
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(tmp.path)) ++n;
  CHECK(n == 1);
}

TEST_CASE("json and yaml carry bytes that are not UTF-8 as base64 next to a lossy string") {
  // What `device exec h -- printf '\377\376ok'` returns, plus an overlong '/', a surrogate and a
  // truncated sequence: each must reach the output, never abort it.
  View v;
  v.data = {{"results", json::array({{{"device", "h1"},
                                      {"stdout", std::string("\xff\xfeok")},
                                      {"stderr", std::string("caf\xc3\xa9")},
                                      {"log", json::array({std::string("a\xc0\xaf"), "b"})},
                                      {"note", std::string("\xed\xa0\x80|\xe2\x82")}}})}};
  std::ostringstream out;
  REQUIRE_NOTHROW(render(v, {Format::json, false}, out));
  auto j = json::parse(out.str());
  const auto& r = j["results"][0];
  CHECK(r["stdout_base64"] == "//5vaw==");
  CHECK(r["stdout"] == "\xef\xbf\xbd\xef\xbf\xbdok");
  CHECK(r["stderr"] == "caf\xc3\xa9");  // valid UTF-8 is left alone, with no _base64 twin
  CHECK_FALSE(r.contains("stderr_base64"));
  CHECK(r["log"][0] == "a\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(r["note_base64"] == "7aCAfOKC");
  std::ostringstream y;
  REQUIRE_NOTHROW(render(v, {Format::yaml, false}, y));
  CHECK(YAML::Load(y.str())["results"][0]["stdout_base64"].as<std::string>() == "//5vaw==");
  // An error quoting argv or remote text is still one JSON object.
  auto e = error_json(Error{ErrorCode::not_found, std::string("device '\xff' not found"), ""});
  CHECK(json::parse(e.dump())["message"] == "device '\xef\xbf\xbd' not found");
}

TEST_CASE(
    "config: missing file is empty, known keys load, unknown keys warn and the rest applies") {
  test::TempDir tmp;
  CHECK_FALSE(load_config(tmp.path / "none.yaml")->output.has_value());
  auto f = tmp.path / "config.yaml";
  std::ofstream(f) << "output: json\ntimeout: 12.5\nparallel: 8\ncolor: never\n";
  auto c = load_config(f).value();
  CHECK(*c.output == "json");
  CHECK(*c.timeout_s == doctest::Approx(12.5));
  CHECK(*c.parallel == 8);
  CHECK(*c.color == "never");
  CHECK(c.warnings.empty());
  std::ofstream(f, std::ios::trunc) << "output: json\nbogus: 1\nparallel: 3\n";
  auto warned = load_config(f);
  REQUIRE(warned);
  CHECK(*warned->output == "json");
  CHECK(*warned->parallel == 3);
  REQUIRE(warned->warnings.size() == 1);
  CHECK(warned->warnings[0].find("config.yaml:2") != std::string::npos);
  CHECK(warned->warnings[0].find("'bogus'") != std::string::npos);
  std::ofstream(f, std::ios::trunc) << "output: [unterminated\n";
  CHECK(load_config(f).error().code == ErrorCode::usage);
}

TEST_CASE("config: known_hosts_files, relative to the config file or ~/") {
  test::TempDir tmp;
  std::ofstream(tmp.path / "kh") << "";
  auto f = tmp.path / "config.yaml";
  std::ofstream(f) << "known_hosts_files:\n  - kh\n  - " << (tmp.path / "kh").string() << "\n";
  auto c = load_config(f);
  REQUIRE(c);
  CHECK(c->known_hosts_files ==
        std::vector<std::string>{(tmp.path / "kh").string(), (tmp.path / "kh").string()});
  CHECK(c->warnings.empty());
  const char* old_home = std::getenv("HOME");
  std::string saved = old_home ? old_home : "";
  ::setenv("HOME", tmp.path.c_str(), 1);
  std::ofstream(f, std::ios::trunc) << "known_hosts_files: [~/kh]\n";
  auto h = load_config(f);
  if (old_home)
    ::setenv("HOME", saved.c_str(), 1);
  else
    ::unsetenv("HOME");
  REQUIRE(h);
  CHECK(h->known_hosts_files == std::vector<std::string>{(tmp.path / "kh").string()});
}

TEST_CASE("config: values are checked as their flags check them, naming file, line and key") {
  test::TempDir tmp;
  auto f = tmp.path / "config.yaml";
  std::ofstream(tmp.path / "kh") << "";
  struct Bad {
    const char* text;
    const char* says;
  };
  for (auto [text, says] :
       {Bad{"output: json\ncolor: purple\n",
            "config.yaml:2: color: 'purple' is not one of auto, always, never"},
        Bad{"timeout: -5\n", "config.yaml:1: timeout: -5 is outside 0.1..86400"},
        Bad{"timeout: .inf\n", "config.yaml:1: timeout: '.inf' is not a number"},
        Bad{"parallel: 0\n", "config.yaml:1: parallel: 0 is outside 1..4096"},
        Bad{"parallel: many\n", "config.yaml:1: parallel: 'many' is not a whole number"},
        Bad{"parallel: 2.5\n", "config.yaml:1: parallel: '2.5' is not a whole number"},
        Bad{"\n\noutput: xml\n", "config.yaml:3: output: 'xml' is not one of table, json, yaml"},
        Bad{"output: [json]\n",
            "config.yaml:1: output: '(not a scalar)' is not one of table, json, yaml"},
        Bad{"known_hosts_files: kh\n", "config.yaml:1: known_hosts_files: expected a list"},
        Bad{"known_hosts_files:\n  - [a]\n",
            "config.yaml:2: known_hosts_files: '(not a scalar)' is not a file name"},
        Bad{"known_hosts_files:\n  - kh\n  - missing_kh\n",
            "config.yaml:3: known_hosts_files: cannot read "}}) {
    CAPTURE(text);
    std::ofstream(f, std::ios::trunc) << text;
    auto r = load_config(f);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find(says) != std::string::npos);
  }
}

TEST_CASE("cancellation flag is process-wide and resettable") {
  reset_cancel();
  CHECK_FALSE(cancel_requested());
  request_cancel();
  CHECK(cancel_requested());
  reset_cancel();
  CHECK_FALSE(cancel_requested());
}

TEST_CASE("the log is rotated by size when opened, keeping three old files") {
  test::TempDir tmp;
  std::string log = (tmp.path / "gedge.log").string();
  auto size = [](const std::string& p) {
    return std::filesystem::exists(p) ? std::filesystem::file_size(p) : 0;
  };
  set_log_file(log);
  log_line("info", "small");
  set_log_file(log);  // under the limit: appended, not rotated
  log_line("info", "still small");
  CHECK_FALSE(std::filesystem::exists(log + ".1"));
  for (int round = 1; round <= 5; ++round) {
    std::ofstream(log, std::ios::app) << std::string(4u << 20, 'x');
    set_log_file(log);
    log_line("info", "round " + std::to_string(round));
    CHECK(size(log) < 100);
    CHECK(size(log + ".1") >= (4u << 20));
  }
  CHECK(std::filesystem::exists(log + ".3"));
  CHECK_FALSE(std::filesystem::exists(log + ".4"));
  set_log_file("");
}

TEST_CASE("rfc3339 timestamps are UTC with seconds") {
  auto t = now_rfc3339();
  CHECK(t.size() == 20);
  CHECK(t[10] == 'T');
  CHECK(t.back() == 'Z');
}

TEST_CASE("config loader survives seeded random mutations: an error or a value, never a crash") {
  test::TempDir tmp;
  auto f = tmp.path / "config.yaml";
  const std::string seed = "output: json\ntimeout: 12.5\nparallel: 8\ncolor: never\n";
  const std::string alphabet = ":-[]{}#&*!|>'\"%@`\n\t ,?0123456789abcxyz\\\x01\xff";
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  for (int i = 0; i < 2000; ++i) {
    std::string s = seed;
    int edits = 1 + static_cast<int>(next() % 6);
    for (int e = 0; e < edits; ++e) {
      size_t pos = next() % (s.size() + 1);
      char c = alphabet[next() % alphabet.size()];
      switch (next() % 3) {
        case 0:
          s.insert(s.begin() + static_cast<long>(pos), c);
          break;
        case 1:
          if (pos < s.size()) s.erase(pos, 1);
          break;
        default:
          if (pos < s.size()) s[pos] = c;
          break;
      }
    }
    std::ofstream(f, std::ios::trunc) << s;
    auto r = load_config(f);
    if (!r) CHECK(r.error().code == ErrorCode::usage);
  }
}

// ---- quantities: Kubernetes' grammar (k8s.io/apimachinery/pkg/api/resource) ------------------

#include "gedge/document.hpp"
#include "gedge/quantity.hpp"

TEST_CASE("quantities: Kubernetes' documented examples parse to the same amounts") {
  // "Memory: 128974848, 129e6, 129M, 128974848000m, 123Mi" are all about the same value.
  CHECK(*parse_memory_quantity(json("128974848")) == 128974848.0);
  CHECK(*parse_memory_quantity(json("129e6")) == 129e6);
  CHECK(*parse_memory_quantity(json("129M")) == 129e6);
  CHECK(*parse_memory_quantity(json("128974848000m")) == doctest::Approx(128974848.0));
  CHECK(*parse_memory_quantity(json("123Mi")) == 123.0 * 1024 * 1024);
  // "400m of memory is 0.4 bytes"; CPU "0.1" = "100m".
  CHECK(*parse_memory_quantity(json("400m")) == doctest::Approx(0.4));
  CHECK(*parse_cpu_quantity(json("0.1")) == doctest::Approx(*parse_cpu_quantity(json("100m"))));
  CHECK(*parse_cpu_quantity(json("250m")) == doctest::Approx(0.25));
  CHECK(*parse_memory_quantity(json("1.5Gi")) == 1.5 * 1024 * 1024 * 1024);
  CHECK(*parse_memory_quantity(json("1e9")) == 1e9);
  CHECK(*parse_memory_quantity(json("512k")) == 512000.0);
  CHECK(*parse_memory_quantity(json("1Ei")) == std::ldexp(1.0, 60));
  CHECK(*parse_cpu_quantity(json(0.5)) == 0.5);  // a YAML number is a quantity too
  CHECK(*parse_cpu_quantity(json(".5")) == 0.5);
  CHECK(*parse_cpu_quantity(json("5.")) == 5);
  CHECK(*parse_cpu_quantity(json("100u")) == doctest::Approx(0.0001));
  CHECK(*parse_cpu_quantity(json("+2")) == 2);
}

TEST_CASE("quantities: what Kubernetes refuses is refused, with a hint") {
  for (const char* bad : {"512K", "1Gb", "1GB", "1.5.2", " 1", "1 ", "", "0x10", "inf", "NaN", "1e",
                          "1ee3", "Mi", "1Mi2", "1e3k"}) {
    auto r = parse_memory_quantity(json(bad));
    CHECK_MESSAGE(!r.has_value(), bad);
    if (!r) CHECK(r.error().code == ErrorCode::usage);
  }
  CHECK(parse_memory_quantity(json("512K")).error().hint.find("512Ki") != std::string::npos);
  CHECK(parse_memory_quantity(json("-1Gi")).error().message.find("negative") != std::string::npos);
  CHECK(parse_cpu_quantity(json(-1)).error().message.find("negative") != std::string::npos);
  CHECK(parse_memory_quantity(json(true)).error().code == ErrorCode::usage);
}

TEST_CASE("quantities: out of range is refused, never wrapped into a negative number") {
  CHECK(parse_memory_quantity(json("7Ei")).has_value());        // 7 * 2^60 < 2^63
  CHECK_FALSE(parse_memory_quantity(json("8Ei")).has_value());  // 2^63
  CHECK(parse_memory_quantity(json("16Ei")).error().message.find("out of range") !=
        std::string::npos);
  CHECK(parse_memory_quantity(json(1e30)).error().message.find("out of range") !=
        std::string::npos);
  CHECK(parse_cpu_quantity(json("1e16")).error().message.find("out of range") !=
        std::string::npos);  // millicores
  CHECK(whole_bytes(0.4) == 1);
  CHECK(whole_bytes(1073741824.0) == 1073741824);
  CHECK(whole_bytes(9.3e18) == std::numeric_limits<int64_t>::max());
  CHECK(quantity_text(json(2)) == "2");
  CHECK(quantity_text(json(0.5)) == "500m");
  CHECK(quantity_text(json("1.5Gi")) == "1.5Gi");
}

TEST_CASE("strict loader: YAML streams, lines, empty documents, bad text") {
  auto docs =
      parse_documents("# c\n---\na: 1\n---\n---\n# only a comment\n---\nb: [x]\n...\n", "f.yaml");
  REQUIRE(docs.has_value());
  REQUIRE(docs->size() == 2);
  CHECK((*docs)[0].doc == json{{"a", 1}});
  CHECK((*docs)[0].line == 2);
  CHECK((*docs)[1].line_of("/b") == 8);
  auto one = parse_document("a: 1\n---\nb: 2\n", "f.yaml");
  REQUIRE_FALSE(one.has_value());
  CHECK(one.error().message.starts_with("f.yaml:2: more than one YAML document"));
  CHECK(parse_documents("a: 1\na: 2\n", "f.yaml")
            .error()
            .message.starts_with("f.yaml:2: duplicate key 'a'"));
  CHECK(parse_documents("a: \xff\n", "f.yaml")
            .error()
            .message.starts_with("f.yaml:1: invalid UTF-8"));
  CHECK(parse_documents(std::string("a: 1\nb: \0\n", 10), "f.yaml")
            .error()
            .message.starts_with("f.yaml:2: NUL"));
  CHECK(parse_documents("a: \x1b[31m\n", "f.yaml").error().message.find("control character") !=
        std::string::npos);
  CHECK(parse_documents("a: \xc3\xa9\n", "f.yaml").has_value());  // é
  CHECK(parse_documents("a: \xed\xa0\x80\n", "f.yaml").error().code ==
        ErrorCode::usage);  // surrogate
  CHECK(parse_documents("x: " + std::string(40000, '9') + "\n", "f.yaml")
            .has_value());  // no regex recursion
  CHECK(parse_documents("{\"a\": [1, 2]}", "f.json")->at(0).doc == json{{"a", {1, 2}}});
  auto j = parse_json_strict(R"({"a": 1, "b": {"a": 2}, "a": 3})", "s.json");
  REQUIRE_FALSE(j.has_value());
  CHECK(j.error().message == "s.json: duplicate key 'a'");
  // A number beyond a double threw out_of_range past the parse_error handler: abort (AFL++).
  auto big = parse_json_strict("5555555E55555555555555555", "s.json");
  REQUIRE_FALSE(big);
  CHECK(big.error().code == ErrorCode::usage);
  CHECK(big.error().message.find("number overflow") != std::string::npos);
  CHECK(parse_json_strict("[NaN]", "s.json").error().message.find("not valid JSON") !=
        std::string::npos);
}

TEST_CASE("read_input_file refuses what is not a regular file, and oversized files") {
  CHECK(read_input_file("/dev/zero").error().message.find("not a regular file") !=
        std::string::npos);
  CHECK(read_input_file("/nonexistent/x.yaml").error().code == ErrorCode::not_found);
  test::TempDir d;
  std::ofstream(d.path / "f.yaml") << std::string(100, 'x');
  CHECK(read_input_file(d.path / "f.yaml", 50).error().message.find("more than the 50") !=
        std::string::npos);
  CHECK(read_input_file(d.path / "f.yaml", 100)->size() == 100);
  CHECK(read_input_file("/dev/null").value().empty());  // the usual "no file"
}

TEST_CASE("a FIFO without a writer is refused at once by every file reader (it hung)") {
  test::TempDir d;
  auto fifo = d.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = read_input_file(fifo, 1 << 20, "state file");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "state file '" + fifo.string() + "' is not a regular file");
  // The config file (read at every start) and /dev/zero as one.
  auto c = load_config(fifo);
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("config file") != std::string::npos);
  CHECK(c.error().code == ErrorCode::usage);
  CHECK(load_config("/dev/zero").error().message.find("not a regular file") != std::string::npos);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);
}

#include <fcntl.h>

#include "gedge/fd.hpp"

TEST_CASE("UniqueFd closes its descriptor exactly once: at scope end, reset, close or move") {
  auto open_fd = [] { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); };
  auto is_open = [](int fd) { return ::fcntl(fd, F_GETFD) != -1; };
  int raw = -1;
  {
    UniqueFd fd(open_fd());
    REQUIRE(fd);
    raw = fd.get();
    CHECK(is_open(raw));
  }
  CHECK_FALSE(is_open(raw));  // closed at scope end

  UniqueFd a(open_fd());
  raw = a.get();
  UniqueFd b(std::move(a));  // moved: one owner, nothing closed
  CHECK_FALSE(a);
  CHECK(b.get() == raw);
  CHECK(is_open(raw));
  UniqueFd c(open_fd());
  int other = c.get();
  c = std::move(b);  // c's old descriptor is closed, b's moves in
  CHECK_FALSE(is_open(other));
  CHECK(c.get() == raw);
  CHECK(c.close() == 0);  // close() reports close(2)'s result
  CHECK_FALSE(is_open(raw));
  CHECK_FALSE(c);
  CHECK(c.close() == 0);  // nothing held: nothing closed again

  UniqueFd d(open_fd());
  int kept = d.release();  // released: the caller owns it
  CHECK_FALSE(d);
  CHECK(is_open(kept));
  d.reset(kept);
  d.reset();
  CHECK_FALSE(is_open(kept));

  UniqueFd ends[2];
  REQUIRE(make_pipe(ends) == 0);
  CHECK(::write(ends[1].get(), "x", 1) == 1);
  char ch = 0;
  CHECK(::read(ends[0].get(), &ch, 1) == 1);
  CHECK(ch == 'x');
  CHECK((::fcntl(ends[0].get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("text helpers: trim, lower and split_list") {
  CHECK(trim("  a b \t\r\n") == "a b");
  CHECK(trim(" \t\n").empty());
  CHECK(trim("") == "");
  CHECK(trim("xxaxx", "x") == "a");
  CHECK(lower("HoSt-01.Example") == "host-01.example");
  CHECK(lower("\xC3\x84"
              "B") ==
        "\xC3\x84"
        "b");  // bytes above ASCII stay as they are
  CHECK(split_list("a, b,,c ,") == std::vector<std::string>{"a", "b", "c"});
  CHECK(split_list("").empty());
  CHECK(split_list(" , ").empty());
  CHECK(split_list("x;y", ';') == std::vector<std::string>{"x", "y"});
  // Only the blanks named are trimmed: a line end stays inside an item when not listed.
  CHECK(split_list("a\n,b", ',', " ") == std::vector<std::string>{"a\n", "b"});
}

TEST_CASE("sha256_hex (OpenSSL) matches the FIPS 180-4 test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
