// Unit tests for the ssh module's pure parts: shell quoting, label filters, status mapping,
// the fan-out exit decision, facts parsing, SHA-256, the device registry's local verbs and
// known_hosts maintenance.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "../../libgedge/src/inventory/raw.hpp"
#include "gedge/device.hpp"
#include "gedge/device_import.hpp"
#include "gedge/device_views.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"
#include "gedge/output.hpp"
#include "gedge/ssh.hpp"
#include "test_helpers.hpp"

using namespace gedge;

namespace {

// Runs `cmd` with /bin/sh and returns its stdout (used to prove quoting round-trips).
std::string sh_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

}  // namespace

TEST_CASE("shell_quote makes every argument one literal word") {
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("abc") == "'abc'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  SUBCASE("hostile arguments survive a real shell unchanged") {
    std::vector<std::string> argv = {"printf",   "%s\\n", "a b",   "$(touch /tmp/gedge-pwned)",
                                     "`id`",     "it's",  "\"q\"", ";",
                                     "&&",       "*",     "$HOME", "back\\slash",
                                     "new\nline"};
    std::string out = sh_out(shell_join(argv));
    std::string want;
    for (size_t i = 2; i < argv.size(); ++i) want += argv[i] + "\n";
    CHECK(out == want);
    CHECK(::access("/tmp/gedge-pwned", F_OK) != 0);
  }
}

TEST_CASE("labels_match requires every wanted label") {
  auto labels = nlohmann::json{{"site", "lab"}, {"gpu", "yes"}};
  CHECK(labels_match(labels, {}));
  CHECK(labels_match(labels, {{"site", "lab"}}));
  CHECK(labels_match(labels, {{"site", "lab"}, {"gpu", "yes"}}));
  CHECK_FALSE(labels_match(labels, {{"site", "far"}}));
  CHECK_FALSE(labels_match(labels, {{"site", "lab"}, {"rack", "1"}}));
  CHECK_FALSE(labels_match(nlohmann::json::object(), {{"site", "lab"}}));
}

TEST_CASE("device_status_for maps error classes to device statuses") {
  CHECK(device_status_for(Error{ErrorCode::unreachable, "", ""}) == "unreachable");
  CHECK(device_status_for(Error{ErrorCode::auth, "", ""}) == "auth_failed");
  CHECK(device_status_for(Error{ErrorCode::host_key, "", ""}) == "host_key_mismatch");
  CHECK(device_status_for(Error{ErrorCode::interrupted, "", ""}) == "interrupted");
  CHECK(device_status_for(Error{ErrorCode::failure, "", ""}) == "failed");
}

TEST_CASE("fan_out_error: ok, partial, and the most specific code when all fail") {
  auto res = [](std::string st, std::string code = "") {
    nlohmann::json j{{"device", "d"}, {"status", st}, {"message", "m"}};
    if (!code.empty()) j["code"] = code;
    return j;
  };
  CHECK_FALSE(fan_out_error(nlohmann::json::array({res("ok"), res("ok")}), "x").has_value());
  auto p =
      fan_out_error(nlohmann::json::array({res("ok"), res("unreachable", "unreachable")}), "x");
  REQUIRE(p);
  CHECK(p->code == ErrorCode::partial);
  CHECK(exit_code_for(p->code) == 3);
  auto u = fan_out_error(
      nlohmann::json::array({res("unreachable", "unreachable"), res("unreachable", "unreachable")}),
      "x");
  REQUIRE(u);
  CHECK(exit_code_for(u->code) == 5);
  auto h = fan_out_error(nlohmann::json::array({res("unreachable", "unreachable"),
                                                res("host_key_mismatch", "host_key")}),
                         "x");
  REQUIRE(h);
  CHECK(h->code == ErrorCode::host_key);
  auto a = fan_out_error(nlohmann::json::array({res("auth_failed", "auth")}), "x");
  REQUIRE(a);
  CHECK(exit_code_for(a->code) == 6);
  SUBCASE("error names as printed in results (auth_failed, host_key_mismatch)") {
    auto e = fan_out_error(nlohmann::json::array({res("unreachable", "unreachable"),
                                                  res("auth_failed", "auth_failed")}),
                           "x");
    REQUIRE(e);
    CHECK(e->code == ErrorCode::auth);
    auto k =
        fan_out_error(nlohmann::json::array({res("token_mismatch", "host_key_mismatch")}), "x");
    REQUIRE(k);
    CHECK(k->code == ErrorCode::host_key);
  }
  auto f = fan_out_error(nlohmann::json::array({res("failed", "failure")}), "x");
  REQUIRE(f);
  CHECK(exit_code_for(f->code) == 1);
}

TEST_CASE("parse_facts reads the facts script's sections") {
  std::string out =
      "@@arch\nx86_64\n@@kernel\n6.1.0\n@@hostname\nh1\n@@os\nPRETTY_NAME=\"Debian GNU/Linux 12 "
      "(bookworm)\"\n"
      "ID=debian\nVERSION_ID=\"12\"\n@@cpus\n4\n@@mem\nMemTotal:       2048 kB\n@@disk\n"
      "/dev/root 1000 400 600 40% /\n@@gpus\n0, NVIDIA A2, 15356, 535.104.05, GPU-abc\n@@podman\n"
      "podman version 4.3.1\n@@docker\n@@token\nabcd\n@@topology\n<topology/>\n@@end\n";
  auto f = parse_facts(out);
  CHECK(f["arch"] == "x86_64");
  CHECK(f["kernel"] == "6.1.0");
  CHECK(f["os"] == "Debian GNU/Linux 12 (bookworm)");
  CHECK(f["os_id"] == "debian");
  CHECK(f["os_version"] == "12");
  CHECK(f["cpus"] == 4);
  CHECK(f["memory_bytes"] == 2048 * 1024);
  CHECK(f["disk_free_bytes"] == 600 * 1024);
  REQUIRE(f["gpus"].size() == 1);
  CHECK(f["gpus"][0]["name"] == "NVIDIA A2");
  CHECK(f["gpus"][0]["memory_bytes"] == int64_t(15356) * 1024 * 1024);
  CHECK(f["gpus"][0]["driver_version"] == "535.104.05");
  CHECK(f["container_runtime"]["name"] == "podman");
  CHECK(f["container_runtime"]["version"] == "4.3.1");
  CHECK(f["token"] == "abcd");
  CHECK(f["topology_xml"] == "<topology/>");
  CHECK(f["complete"] == true);
  SUBCASE("a truncated answer is not complete") {
    CHECK(parse_facts("@@arch\nx86_64\n")["complete"] == false);
  }
  SUBCASE("no runtime, no gpus") {
    auto g = parse_facts("@@gpus\n@@podman\n@@docker\n@@end\n");
    CHECK(g["gpus"].empty());
    CHECK(g["container_runtime"].is_null());
  }
}

TEST_CASE("known_hosts_update keys lines by HostKeyAlias and drops the legacy [host]:port line") {
  test::TempDir dir;
  auto file = dir.path / "known_hosts";
  REQUIRE(
      write_file_atomic(file, "[10.0.0.1]:2200 ssh-ed25519 OLD\nother ssh-ed25519 KEEP\n", 0600));
  REQUIRE(known_hosts_update(file, "a", "ssh-ed25519 AAAA1", "[10.0.0.1]:2200"));
  REQUIRE(known_hosts_update(file, "b", "ssh-ed25519 BBBB"));
  REQUIRE(known_hosts_update(file, "a/jump", "ssh-ed25519 JJJJ"));
  REQUIRE(known_hosts_update(file, "a", "ssh-ed25519 AAAA2"));
  auto text = *read_file(file);
  CHECK(text.find("\na ssh-ed25519 AAAA2\n") != std::string::npos);
  CHECK(text.find("AAAA1") == std::string::npos);
  CHECK(text.find("OLD") == std::string::npos);
  CHECK(text.find("other ssh-ed25519 KEEP\n") != std::string::npos);
  CHECK(text.find("b ssh-ed25519 BBBB\n") != std::string::npos);
  CHECK(text.find("a/jump ssh-ed25519 JJJJ\n") != std::string::npos);
  REQUIRE(known_hosts_update(file, "a", ""));
  text = *read_file(file);
  CHECK(text.find("\na ") == std::string::npos);
  CHECK(text.find("a/jump ") != std::string::npos);
  CHECK(text.find("BBBB") != std::string::npos);
}

TEST_CASE("parse_ssh_G reads what OpenSSH resolved and expands key paths") {
  auto r = parse_ssh_G(
      "user bob\nhostname 10.213.2.10\nport 2222\nidentityfile ~/.ssh/k_%r\n"
      "identityfile %d/.ssh/id_%u\ncertificatefile ~/.ssh/k-cert.pub\n"
      "proxyjump alice@bast:2200\nidentityagent /run/agent.sock\nproxycommand none\n",
      "/home/op", "op");
  CHECK(r.host == "10.213.2.10");
  CHECK(r.port == 2222);
  CHECK(r.user == "bob");
  CHECK(r.identity_files == std::vector<std::string>{"/home/op/.ssh/k_bob", "/home/op/.ssh/id_op"});
  CHECK(r.certificate_files == std::vector<std::string>{"/home/op/.ssh/k-cert.pub"});
  CHECK(r.proxy_jump == "alice@bast:2200");
  CHECK(r.identity_agent == "/run/agent.sock");
  CHECK_FALSE(r.proxy_command);
  auto n = parse_ssh_G(
      "hostname h\nport 22\nuser u\nproxyjump none\nidentityagent SSH_AUTH_SOCK\nproxycommand nc "
      "%h %p\n",
      "/h", "u");
  CHECK(n.proxy_jump.empty());
  CHECK(n.identity_agent.empty());
  CHECK(n.proxy_command);
}

TEST_CASE("parse_address takes host, user@host, host:port, [v6]:port and names bad input") {
  auto a = parse_address("pi@10.0.0.7:2222", "--host");
  REQUIRE(a);
  CHECK((a->user == "pi" && a->host == "10.0.0.7" && a->port == 2222));
  a = parse_address("cam-alias", "--host");
  REQUIRE(a);
  CHECK((a->user.empty() && a->host == "cam-alias" && a->port == 0));
  a = parse_address("ssh://ops@[fd00::5]:22", "ProxyJump");
  REQUIRE(a);
  CHECK((a->user == "ops" && a->host == "fd00::5" && a->port == 22));
  a = parse_address("fd00::5", "--host");
  REQUIRE(a);
  CHECK((a->host == "fd00::5" && a->port == 0));
  for (const char* bad :
       {"h:", "h:99999", "h:x", "@h", "-oProxyCommand=x", "a b", "u@", "[fd00::1"}) {
    auto r = parse_address(bad, "--host");
    CHECK_MESSAGE(!r, bad);
    if (!r) {
      CHECK(r.error().code == ErrorCode::usage);
      CHECK(r.error().message.find("--host") != std::string::npos);
    }
  }
}

TEST_CASE("resolve_ssh_host runs OpenSSH's own ssh -G on the given config") {
  if (!find_ssh()) return;  // no OpenSSH client here
  test::TempDir dir;
  auto cfg = dir.path / "config";
  REQUIRE(write_file_atomic(
      cfg,
      "Host cam\n  HostName 10.213.2.10\n  User pi\n  Port 2200\n  ProxyJump ops@bast\n"
      "Host bast\n  HostName 10.213.2.1\n  Port 2022\n",
      0600));
  auto r = resolve_ssh_host("cam", "", 0, cfg.string());
  REQUIRE(r);
  CHECK(r->host == "10.213.2.10");
  CHECK(r->port == 2200);
  CHECK(r->user == "pi");
  CHECK(r->proxy_jump == "ops@bast");
  auto over = resolve_ssh_host("cam", "root", 22, cfg.string());
  REQUIRE(over);
  CHECK((over->user == "root" && over->port == 22));  // flags win over the config
  auto j = resolve_ssh_host("bast", "ops", 0, cfg.string());
  REQUIRE(j);
  CHECK((j->host == "10.213.2.1" && j->port == 2022 && j->user == "ops"));
  auto missing = resolve_ssh_host("cam", "", 0, (dir.path / "nope").string());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::usage);
}

TEST_CASE("resolve_proxy_jump follows OpenSSH's hop order through ssh -G") {
  if (!find_ssh()) return;  // no OpenSSH client here
  test::TempDir dir;
  auto cfg = dir.path / "config";
  REQUIRE(write_file_atomic(cfg,
                            "Host b1\n  HostName 10.213.0.41\n  User ops\n"
                            "Host b2\n  HostName 10.213.2.20\n  Port 2022\n  ProxyJump b1\n"
                            "Host b3\n  HostName 10.213.3.1\n  ProxyJump nowhere\n"
                            "Host loop\n  HostName 10.0.0.1\n  ProxyJump loop\n"
                            "Host pc\n  HostName 10.0.0.2\n  ProxyCommand nc %h %p\n",
                            0600));
  auto hosts = [](const std::vector<JumpHost>& hops) {
    std::string s;
    for (const auto& h : hops) s += fmt::format("{}@{}:{} ", h.user, h.host, h.port);
    return s;
  };
  // A list, in order; a hop's own user@/:port win over its config.
  auto list = resolve_proxy_jump("b1, root@b2:22", cfg.string());
  REQUIRE(list);
  CHECK(hosts(*list) == "ops@10.213.0.41:22 root@10.213.2.20:22 ");
  // The first hop's own ProxyJump comes before it ...
  auto nested = resolve_proxy_jump("b2", cfg.string());
  REQUIRE(nested);
  CHECK(hosts(*nested).find("ops@10.213.0.41:22 ") == 0);
  CHECK(nested->size() == 2);
  CHECK((*nested)[1].host == "10.213.2.20");
  // ... a later hop's is not followed (ssh -J b1,b3 runs ssh -J b1 -W .. b3).
  auto later = resolve_proxy_jump("b1,b3", cfg.string());
  REQUIRE(later);
  CHECK(later->size() == 2);
  auto loop = resolve_proxy_jump("loop", cfg.string());
  REQUIRE_FALSE(loop);
  CHECK(loop.error().code == ErrorCode::usage);
  CHECK(loop.error().message.find("more than 8 hops") != std::string::npos);
  auto pc = resolve_proxy_jump("b1,pc", cfg.string());
  REQUIRE(pc);  // not the first hop: its ProxyCommand is not used, as with OpenSSH
  auto pc_first = resolve_proxy_jump("pc,b1", cfg.string());
  REQUIRE_FALSE(pc_first);
  CHECK(pc_first.error().message.find("ProxyCommand") != std::string::npos);
  auto empty = resolve_proxy_jump("b1,,b2", cfg.string());
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message.find("empty hop") != std::string::npos);
}

TEST_CASE("the jump command pins the jump's key by alias and survives sh and ssh quoting") {
  JumpHost j{"10.213.2.1", 2022, "ops", "/keys/jump key", "cam/jump", {}, {}};
  JumpCommand cmd;
  cmd.program = "/usr/bin/ssh";
  cmd.known_hosts = "/tmp/gedge 100%/known_hosts";
  cmd.identities = {"/keys/gedge"};
  auto argv = jump_argv(cmd, j, "10.213.2.10", "22");
  auto has = [&](const std::string& a, const std::string& b) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == a && argv[i + 1] == b) return true;
    return false;
  };
  CHECK(has("-F", "/dev/null"));
  CHECK(has("-o", "StrictHostKeyChecking=yes"));
  CHECK(has("-o", "HostKeyAlias=cam/jump"));
  CHECK(has("-o", "UserKnownHostsFile=\"/tmp/gedge 100%%/known_hosts\""));
  CHECK(has("-o", "BatchMode=yes"));
  CHECK(has("-i", "/keys/jump key"));
  CHECK(has("-i", "/keys/gedge"));
  CHECK(has("-p", "2022"));
  CHECK(has("-l", "ops"));
  CHECK(has("-W", "[10.213.2.10]:22"));
  CHECK(argv.back() == "10.213.2.1");
  CHECK(argv[argv.size() - 2] == "--");
  // As a ProxyCommand: ssh turns %% into % and %h/%p into the target, then sh splits it.
  auto pc = jump_proxy_command(cmd, j);
  std::string expanded;
  for (size_t i = 0; i < pc.size(); ++i) {
    if (pc[i] == '%' && i + 1 < pc.size()) {
      char t = pc[++i];
      expanded += t == '%'   ? std::string("%")
                  : t == 'h' ? std::string("10.213.2.10")
                             : std::string("22");
    } else {
      expanded += pc[i];
    }
  }
  auto words = sh_out("for w in " + expanded.substr(expanded.find(' ') + 1) +
                      "; do printf '%s\\n' \"$w\"; done");
  std::string want;
  for (size_t i = 1; i < argv.size(); ++i) want += argv[i] + "\n";
  CHECK(words == want);
}

namespace {
// What OpenSSH does with a ProxyCommand value before its shell runs it: %% -> %, %h and %p ->
// the host being connected to.
std::string expand_proxy_tokens(const std::string& pc, const std::string& host,
                                const std::string& port) {
  std::string out;
  for (size_t i = 0; i < pc.size(); ++i) {
    if (pc[i] == '%' && i + 1 < pc.size()) {
      char t = pc[++i];
      out += t == '%'   ? std::string("%")
             : t == 'h' ? host
             : t == 'p' ? port
                        : "%" + std::string(1, t);
    } else {
      out += pc[i];
    }
  }
  return out;
}
// The words sh makes of a command line (one per line; none of the test words has a newline).
std::vector<std::string> sh_words(const std::string& line) {
  auto out = sh_out("for w in " + line + "; do printf '%s\\n' \"$w\"; done");
  std::vector<std::string> words;
  std::istringstream in(out);
  std::string w;
  while (std::getline(in, w)) words.push_back(w);
  return words;
}
std::string option_value(const std::vector<std::string>& argv, const std::string& name) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-o" && argv[i + 1].rfind(name + "=", 0) == 0)
      return argv[i + 1].substr(name.size() + 1);
  return {};
}
}  // namespace

TEST_CASE(
    "a multi-hop jump nests each hop's ssh as the next one's ProxyCommand, every hop pinned") {
  // ProxyJump a,b,c: c runs -W to the device, reached through b, reached through a.
  JumpHost a{"10.213.0.41", 22, "ops", "/keys/a key", "cam/jump-1", {}, {}};
  JumpHost b{"10.213.2.20", 2022, "o'p", "", "cam/jump-2", {}, {}};
  JumpHost c{"10.213.3.1", 22, "ops", "", "cam/jump", {}, {}};
  a.host_key.public_key = "ssh-ed25519 AAAA1";
  b.host_key.public_key = "ssh-ed25519 AAAA2";
  c.host_key.public_key = "ssh-ed25519 AAAA3";
  c.via = {a, b};
  JumpCommand cmd;
  cmd.program = "/usr/bin/ssh";
  cmd.known_hosts = "/tmp/gedge 100%/known_hosts";
  cmd.identities = {"/keys/gedge"};

  auto hops = jump_hops(c);
  REQUIRE(hops.size() == 3);
  CHECK((hops[0].alias == "cam/jump-1" && hops[1].alias == "cam/jump-2" &&
         hops[2].alias == "cam/jump"));
  CHECK(hops[2].via.empty());
  auto lines = jump_known_hosts_lines(c, "cam");
  REQUIRE(lines);
  CHECK(*lines ==
        "cam/jump-1 ssh-ed25519 AAAA1\ncam/jump-2 ssh-ed25519 AAAA2\ncam/jump ssh-ed25519 AAAA3\n");
  JumpHost unpinned = c;
  unpinned.via[1].host_key.public_key.clear();
  auto missing = jump_known_hosts_lines(unpinned, "cam");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::host_key);
  CHECK(missing.error().message.find("10.213.2.20:2022 (cam/jump-2)") != std::string::npos);

  // The process gedge starts is c's ssh; its ProxyCommand, as OpenSSH expands it for c and sh
  // splits it, is exactly b's argv to c; b's ProxyCommand likewise is a's argv to b.
  auto argv_c = jump_argv(cmd, c, "10.213.3.10", "22");
  CHECK(option_value(argv_c, "HostKeyAlias") == "cam/jump");
  CHECK(argv_c.back() == "10.213.3.1");
  auto pc_b = option_value(argv_c, "ProxyCommand");
  REQUIRE_FALSE(pc_b.empty());
  JumpHost b_via_a = b;
  b_via_a.via = {a};
  auto words_b = sh_words(expand_proxy_tokens(pc_b, "10.213.3.1", "22"));
  CHECK(words_b == jump_argv(cmd, b_via_a, "10.213.3.1", "22"));
  CHECK(option_value(words_b, "HostKeyAlias") == "cam/jump-2");
  CHECK(option_value(words_b, "UserKnownHostsFile") == "\"/tmp/gedge 100%%/known_hosts\"");
  auto pc_a = option_value(words_b, "ProxyCommand");
  REQUIRE_FALSE(pc_a.empty());
  auto words_a = sh_words(expand_proxy_tokens(pc_a, "10.213.2.20", "2022"));
  CHECK(words_a == jump_argv(cmd, a, "10.213.2.20", "2022"));
  CHECK(option_value(words_a, "HostKeyAlias") == "cam/jump-1");
  CHECK(option_value(words_a, "ProxyCommand").empty());  // the outermost hop is reached directly

  // The whole chain as one ProxyCommand (Ansible's): expanded for the device, it is c's argv.
  auto pc = jump_proxy_command(cmd, c);
  auto words = sh_words(expand_proxy_tokens(pc, "10.213.3.10", "22"));
  auto want = jump_argv(cmd, c, "10.213.3.10", "22");
  CHECK(words == std::vector<std::string>(want.begin(), want.end()));
}

TEST_CASE("device registry: unknown names, selection and unreachable hosts") {
  test::TempDir dir;
  auto inv = Inventory::open(dir.path / "gedge.db", true);
  REQUIRE(inv);
  Paths paths;
  paths.home = dir.path;
  paths.db = dir.path / "gedge.db";
  paths.key = dir.path / "id_ed25519";
  paths.known_hosts = dir.path / "known_hosts";

  SUBCASE("unknown device is not_found (exit 4)") {
    auto t = device_target(*inv, paths, "nope");
    REQUIRE_FALSE(t);
    CHECK(exit_code_for(t.error().code) == 4);
    CHECK(exit_code_for(device_show(*inv, "nope").error().code) == 4);
    DeviceSelector sel;
    sel.names = {"nope"};
    CHECK(exit_code_for(select_devices(*inv, sel).error().code) == 4);
  }
  SUBCASE("selecting nothing is a usage error") {
    CHECK(select_devices(*inv, DeviceSelector{}).error().code == ErrorCode::usage);
  }
  SUBCASE("add validates its input before any network I/O") {
    DeviceAddRequest r;
    r.name = "bad name";
    r.host = "127.0.0.1";
    CHECK(device_add(*inv, paths, r, null_reporter()).error().code == ErrorCode::usage);
    r.name = "ok";
    r.tier = "moon";
    CHECK(device_add(*inv, paths, r, null_reporter()).error().code == ErrorCode::usage);
    r.tier = "";
    r.host_key = "MD5:aa";
    CHECK(device_add(*inv, paths, r, null_reporter()).error().code == ErrorCode::usage);
  }
  SUBCASE("ls and selection filter in SQL by labels_match's and in_groups's rules") {
    // Rows as a hand-edited or older inventory may hold them: non-string label values, JSON that
    // is not an object/array, invalid JSON, a label key with a dot and a quote.
    struct Row {
      const char* name;
      const char* tier;
      const char* labels;
      const char* groups;
    };
    const std::vector<Row> rows = {
        {"a", "local", R"({"site":"lab","gpu":"yes"})", R"(["cams","all"])"},
        {"b", "cloud", R"({"site":"lab","n":5})", R"(["all"])"},
        {"c", "local", R"({"site":"far","a.b\"c":"x"})", R"([1,"cams"])"},
        {"d", "", R"(["site"])", R"({"cams":1})"},
        {"e", "local", "not json", "not json"},
        {"f", "local", R"({"site":"lab","gpu":null})", "[]"},
    };
    for (const auto& r : rows)
      REQUIRE(InventoryRaw::exec(
          *inv,
          "INSERT INTO devices (name, host, user, tier, labels, groups, created_at, "
          "updated_at) VALUES (?, '127.0.0.1', 'u', NULLIF(?, ''), ?, ?, 'x', 'x')",
          {std::string(r.name), std::string(r.tier), std::string(r.labels),
           std::string(r.groups)}));
    auto expect = [&](const DeviceSelector& sel) {
      std::vector<std::string> want;
      for (const auto& r : rows) {
        auto labels = nlohmann::json::parse(r.labels, nullptr, false);
        auto groups = nlohmann::json::parse(r.groups, nullptr, false);
        if (!sel.tier.empty() && sel.tier != r.tier) continue;
        if (!labels_match(labels.is_discarded() ? nlohmann::json::object() : labels, sel.labels))
          continue;
        if (!in_groups(groups.is_discarded() ? nlohmann::json::array() : groups, sel.groups))
          continue;
        want.push_back(r.name);
      }
      return want;
    };
    auto names_of = [](const nlohmann::json& list) {
      std::vector<std::string> out;
      for (const auto& d : list) out.push_back(d["name"].get<std::string>());
      return out;
    };
    std::vector<DeviceSelector> sels(9);
    sels[0].all = true;
    sels[1].labels = {{"site", "lab"}};
    sels[2].labels = {{"site", "lab"}, {"gpu", "yes"}};
    sels[3].labels = {{"n", "5"}};
    sels[4].labels = {{"a.b\"c", "x"}};
    sels[5].groups = {"cams"};
    sels[6].groups = {"cams", "all"};
    sels[7].tier = "local";
    sels[7].labels = {{"site", "lab"}};
    sels[8].labels = {{"gpu", ""}};
    for (const auto& sel : sels) {
      CAPTURE(nlohmann::json(sel.labels).dump());
      CAPTURE(nlohmann::json(sel.groups).dump());
      auto want = expect(sel);
      auto list = device_list(*inv, sel);
      REQUIRE(list);
      CHECK(names_of(*list) == want);
      auto picked = select_devices(*inv, sel);
      if (want.empty()) {
        CHECK(exit_code_for(picked.error().code) == 4);
      } else {
        REQUIRE(picked);
        CHECK(*picked == want);
      }
    }
    CHECK(expect(sels[1]) == std::vector<std::string>{"a", "b", "f"});  // the rules themselves
    CHECK(expect(sels[5]) == std::vector<std::string>{"a", "c"});
  }
  SUBCASE("device_list_json prints exactly what rendering device_list's result prints") {
    auto render_json = [](const nlohmann::json& data) {
      std::ostringstream os;
      render(View{data, {}, "", "", nullptr}, RenderOptions{Format::json, false}, os);
      return os.str();
    };
    auto same = [&](const DeviceSelector& sel) {
      auto list = device_list(*inv, sel);
      REQUIRE(list);
      std::string text;
      auto written = device_list_json(*inv, sel, text);
      REQUIRE(written);
      REQUIRE(*written);
      CHECK(text + "\n" == render_json(*list));
      return list->size();
    };
    DeviceSelector all;
    all.all = true;
    CHECK(same(all) == 0);  // "[]"
    const char* insert =
        "INSERT INTO devices (name, host, port, user, identity, tier, site, labels, groups, "
        "host_key_type, host_key_fp, facts, status, last_seen, rtt_ms, alias, certificate, "
        "identity_agent, auth, proxy_jump, created_at, updated_at) VALUES (?, ?, ?, 'u', ?, ?, ?, "
        "?, ?, 'ssh-ed25519', 'SHA256:abc', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x', 'x')";
    auto add = [&](std::string name, std::string host, int64_t port, SqlValue identity,
                   SqlValue tier, std::string labels, std::string groups, std::string facts,
                   SqlValue rtt, SqlValue jump, SqlValue alias) {
      REQUIRE(InventoryRaw::exec(
          *inv, insert,
          {name, host, port, identity, tier, SqlValue(nullptr), labels, groups, facts,
           std::string("ok"), std::string("2026-01-01T00:00Z"), rtt, alias, SqlValue(nullptr),
           SqlValue(nullptr), std::string("identity"), jump}));
    };
    add("a", "10.0.0.1", 22, nullptr, std::string("local"), R"({"site":"lab","n":5})",
        R"(["cams"])", "{}", 1.25, nullptr, nullptr);
    add("b", "tab\there \"quoted\" \u00e9\x01", 2222, std::string("/k/id"), nullptr, "{}", "[]",
        R"({"arch":"aarch64","cpus":4,"gpus":[{"name":"Orin","mem":8}],"zeta":{"x":[1,2.5]},"os":null})",
        0.1,
        std::string(
            R"({"host":"bast","port":2200,"user":"j","identity":"/k",)"
            R"("host_key":{"type":"ssh-ed25519","fingerprint":"SHA256:j","public_key":"AAAA"}})"),
        std::string("gw-alias"));
    add("c", "10.0.0.3", 22, nullptr, nullptr, "not json", R"({"x":1})", "[1]", 1e-7,
        std::string("[]"), nullptr);
    CHECK(same(all) == 3);
    DeviceSelector lab;
    lab.labels = {{"site", "lab"}};
    CHECK(same(lab) == 1);
    DeviceSelector none;
    none.groups = {"nope"};
    CHECK(same(none) == 0);
    // A stored string that is not UTF-8: the caller must render device_list's result instead.
    REQUIRE(InventoryRaw::exec(
        *inv, "UPDATE devices SET host = CAST(X'6869FF6A' AS TEXT) WHERE name = 'c'"));
    std::string text;
    auto written = device_list_json(*inv, all, text);
    REQUIRE(written);
    CHECK_FALSE(*written);
    CHECK(same(lab) == 1);
  }
  SUBCASE("fan-out selection: rows from one query, in the order asked, last_seen as stored") {
    // Nothing listens on loopback port 1: every check is unreachable at once.
    for (auto [name, seen] : {std::pair{"b", "2026-01-02T03:04:05Z"}, std::pair{"a", ""},
                              std::pair{"c", "2025-12-31T00:00:00Z"}})
      REQUIRE(InventoryRaw::exec(
          *inv,
          "INSERT INTO devices (name, host, port, user, last_seen, created_at, updated_at) "
          "VALUES (?, '127.0.0.1', 1, 'u', NULLIF(?, ''), 'x', 'x')",
          {std::string(name), std::string(seen)}));
    DeviceSelector sel;
    sel.names = {"c", "nope", "a"};
    auto missing = select_devices(*inv, sel);
    REQUIRE_FALSE(missing);
    CHECK(exit_code_for(missing.error().code) == 4);
    CHECK(missing.error().message.find("'nope'") != std::string::npos);
    sel.names = {"c", "a", "c"};  // as asked, a repeat included
    CHECK(select_devices(*inv, sel).value() == sel.names);
    FanOutRequest req;
    req.timeout_s = 5;
    req.select.names = {"c", "a", "b"};
    auto rep = device_check(*inv, paths, req, null_reporter());
    REQUIRE(rep);
    const auto& results = rep->json["results"];
    REQUIRE(results.size() == 3);
    const char* want_seen[] = {"2025-12-31T00:00:00Z", nullptr, "2026-01-02T03:04:05Z"};
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(results[i]["device"] == req.select.names[i]);
      CHECK(results[i]["status"] == "unreachable");
      if (want_seen[i])
        CHECK(results[i]["last_seen"] == want_seen[i]);
      else
        CHECK(results[i]["last_seen"].is_null());
    }
    CHECK(rep->json["summary"]["unreachable"] == 3);
    auto shown = device_show(*inv, "b");
    REQUIRE(shown);
    CHECK((*shown)["status"] == "unreachable");
    CHECK((*shown)["last_seen"] == "2026-01-02T03:04:05Z");
    CHECK_FALSE(std::filesystem::exists(paths.known_hosts));  // nothing verified, nothing pinned
    req.select = DeviceSelector{};
    req.select.all = true;
    auto all = device_check(*inv, paths, req, null_reporter());
    REQUIRE(all);
    REQUIRE(all->json["results"].size() == 3);
    CHECK(all->json["results"][0]["device"] == "a");  // --all: by name
    CHECK(all->json["results"][2]["device"] == "c");
  }
  SUBCASE("a refused connection is unreachable (exit 5), quickly") {
    // Port 1 on loopback: nothing listens, the kernel refuses at once.
    SshTarget t{"dead", "127.0.0.1", 1, "nobody", "", {}};
    auto opts = default_ssh_options(paths, 5);
    auto s = SshSession::connect(t, opts);
    REQUIRE_FALSE(s);
    CHECK(s.error().code == ErrorCode::unreachable);
    FanOutOptions fo;
    fo.ssh = opts;
    auto res = fan_out<int>({t, t}, fo, [](SshSession&) -> Result<int> { return 1; });
    REQUIRE(res.size() == 2);
    CHECK_FALSE(res[0].result);
    CHECK(res[1].result.error().code == ErrorCode::unreachable);
  }
}

TEST_CASE("fan-out raises a low soft descriptor limit instead of failing hosts with EMFILE") {
  test::TempDir dir;
  Paths paths;
  paths.home = dir.path;
  paths.key = dir.path / "id_ed25519";
  paths.known_hosts = dir.path / "known_hosts";
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  const rlim_t need = 120 * 4 + 64;  // 120 in flight, 4 descriptors each, 64 spare
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < need) return;  // cannot show it here
  rlimit low = old;
  low.rlim_cur = 48;  // fewer than one descriptor per target
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  // 120 targets at once, each refused at once on loopback port 1.
  std::vector<SshTarget> ts(120, SshTarget{"dead", "127.0.0.1", 1, "nobody", "", {}});
  FanOutOptions fo;
  fo.ssh = default_ssh_options(paths, 5);
  fo.parallel = 120;
  auto res = fan_out<int>(ts, fo, [](SshSession&) -> Result<int> { return 1; });
  rlimit now{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
  ::setrlimit(RLIMIT_NOFILE, &old);
  CHECK(now.rlim_cur >= need);
  REQUIRE(res.size() == 120);
  for (const auto& r : res) {
    REQUIRE_FALSE(r.result);
    CHECK(r.result.error().code == ErrorCode::unreachable);
    CHECK(r.result.error().message.find("Too many open files") == std::string::npos);
  }
}

TEST_CASE("parse_ansible_ini: groups, :vars, :children, connection variables and labels") {
  const char* ini = R"(# EVC fleet
gw0 ansible_host=10.0.0.1

[cams]
cam1 ansible_host=10.0.1.1 ansible_user=pi zone="north gate"
cam2:2222 ansible_host=10.0.1.2   # inline comment
[cams:vars]
ansible_port=2200
ansible_ssh_private_key_file=/keys/cams
model=imx477

[gpus]
jet1 ansible_host=10.0.2.1 ansible_port=22 ansible_password=hunter2

[edge:children]
cams
gpus
[edge:vars]
site=plant-7
model=generic

[all:vars]
ansible_user=ops
)";
  auto r = parse_ansible_ini(ini, "fleet.ini");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  REQUIRE(r->size() == 4);
  std::map<std::string, ImportHost> by;
  for (auto& h : *r) by[h.name] = h;
  CHECK(by["gw0"].host == "10.0.0.1");
  CHECK(by["gw0"].user == "ops");  // all:vars
  CHECK(by["gw0"].groups == std::vector<std::string>{"ungrouped"});
  CHECK(by["gw0"].line == 2);
  auto& c1 = by["cam1"];
  CHECK(
      (c1.host == "10.0.1.1" && c1.user == "pi" && c1.port == 2200 && c1.identity == "/keys/cams"));
  CHECK(c1.labels == std::map<std::string, std::string>{
                         {"model", "imx477"}, {"site", "plant-7"}, {"zone", "north gate"}});
  CHECK(c1.groups == std::vector<std::string>{"cams", "edge"});
  CHECK(by["cam2"].port == 2222);                    // the host's own port beats cams:vars
  CHECK(by["cam2"].labels.at("model") == "imx477");  // the child group's value beats the parent's
  CHECK(by["jet1"].labels.at("model") == "generic");
  CHECK(by["jet1"].labels.count("ansible_password") == 0);
  CHECK(by["jet1"].secrets == std::vector<std::string>{"ansible_password"});
  CHECK(by["jet1"].groups == std::vector<std::string>{"edge", "gpus"});
}

TEST_CASE("parse_ansible_ini: malformed lines name FILE:LINE") {
  struct Case {
    const char* text;
    const char* where;
    const char* what;
  };
  for (const auto& c :
       std::vector<Case>{{"[cams\nh1\n", "x.ini:1:", "malformed section"},
                         {"[cams]\nh1 ansible_port\n", "x.ini:2:", "KEY=VALUE"},
                         {"[cams]\nweb[01:10]\n", "x.ini:2:", "host range"},
                         {"[cams]\nh1 ansible_port=99999\n", "x.ini:2:", "ansible_port"},
                         {"[cams:vars]\nnot a var\n", "x.ini:2:", "KEY=VALUE"},
                         {"[a:children]\nb\n[b:children]\na\n", "x.ini:", "own ancestor"},
                         {"[g:weird]\n", "x.ini:1:", "unknown section kind"},
                         {"\n\n[cams]\nbad/name\n", "x.ini:4:", "not a valid device name"},
                         {"[cams]\nh1 zone='open\n", "x.ini:2:", "unterminated quote"}}) {
    auto r = parse_ansible_ini(c.text, "x.ini");
    REQUIRE_MESSAGE(!r, c.text);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK_MESSAGE(r.error().message.find(c.where) == 0, r.error().message);
    CHECK_MESSAGE(r.error().message.find(c.what) != std::string::npos, r.error().message);
  }
}

TEST_CASE("parse_ansible_yaml and parse_ssh_config_hosts") {
  auto y = parse_ansible_yaml(R"(all:
  vars: {ansible_user: ops}
  children:
    cams:
      hosts:
        cam1: {ansible_host: 10.0.1.1, zone: north}
      vars: {ansible_port: 2200}
    edge:
      children:
        cams:
)",
                              "f.yml");
  REQUIRE_MESSAGE(y, (y ? "" : y.error().message));
  REQUIRE(y->size() == 1);
  CHECK(y->front().groups == std::vector<std::string>{"cams", "edge"});
  CHECK((y->front().user == "ops" && y->front().port == 2200 &&
         y->front().labels.at("zone") == "north"));
  auto bad = parse_ansible_yaml("all:\n  hosts:\n    h1:\n      ansible_port: nope\n", "f.yml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("f.yml:4") == 0);
  auto s = parse_ssh_config_hosts(
      "Host *\n  User x\nHost cam-a cam-b\n  HostName 1.2.3.4\nHost=gw\nHost !x *.lan\n", "c");
  REQUIRE(s);
  REQUIRE(s->size() == 3);
  CHECK(((*s)[0].name == "cam-a" && (*s)[1].name == "cam-b" && (*s)[2].name == "gw" &&
         (*s)[2].line == 5));
}

TEST_CASE(
    "known_hosts_lookup: hashed and plain names, patterns, [host]:port, a different key, "
    "@revoked") {
  const std::string a =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF1a6WmmugztfMUw6lUnZZ/fza6VH6EDMQbPm+m+XRZl";
  const std::string b =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAy0aWwMwidQwscIp97wx00u79QPEJDRKYUnBPmTwPx/";
  test::TempDir dir;
  auto file = (dir.path / "known_hosts").string();
  REQUIRE(write_file_atomic(
      file,
      "# operator's file\n"
      "|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=|ebYd2ZJXK9TMZ2lMJkK939Etn8k= " +
          a + "\n" + "|1|MDEyMzQ1Njc4OWFiY2RlZmdoaWo=|PhVPLxdW0e17pTcv2daaFRYfn98= " + b + "\n" +
          "cam-*.lan,!cam-9.lan " + a + "\n" + "10.213.0.13 " + b + "\n" + "@revoked * " + b +
          "\n" + "@cert-authority *.lan " + a + "\n",
      0600));
  HostKey ka{"ssh-ed25519", "", a}, kb{"ssh-ed25519", "", b};
  SUBCASE("a hashed line for host:22") {
    auto v = known_hosts_lookup({file}, known_hosts_names("10.213.0.11", 22), ka);
    REQUIRE(v);
    CHECK(v->kind == KnownHostsVerdict::match);
    CHECK(v->where == file + ":2");
  }
  SUBCASE("a hashed [host]:port line, but the key is revoked") {
    auto v = known_hosts_lookup({file}, known_hosts_names("10.213.0.12", 2222), kb);
    REQUIRE(v);
    CHECK(v->kind == KnownHostsVerdict::revoked);
    CHECK(v->where == file + ":6");
  }
  SUBCASE("patterns, negation, and the alias the operator typed") {
    CHECK(known_hosts_lookup({file}, known_hosts_names("10.9.9.9", 22, "cam-1.lan"), ka)->kind ==
          KnownHostsVerdict::match);
    CHECK(known_hosts_lookup({file}, known_hosts_names("10.9.9.9", 22, "cam-9.lan"), ka)->kind ==
          KnownHostsVerdict::none);
    CHECK(known_hosts_lookup({file}, known_hosts_names("10.9.9.9", 2200, "cam-1.lan"), ka)->kind ==
          KnownHostsVerdict::none);  // another port is another entry
  }
  SUBCASE("a line for the host with another key") {
    auto v = known_hosts_lookup({file}, known_hosts_names("10.213.0.11", 22), kb);
    REQUIRE(v);
    CHECK(v->kind == KnownHostsVerdict::revoked);  // b is revoked everywhere: that wins
    auto w = known_hosts_lookup({file}, known_hosts_names("10.213.0.13", 22), ka);
    REQUIRE(w);
    CHECK(w->kind == KnownHostsVerdict::mismatch);
    CHECK(w->where == file + ":5");
  }
  CHECK(known_hosts_lookup({file + ".missing"}, {"h"}, ka).error().code == ErrorCode::usage);
  SUBCASE(
      "a FIFO without a writer and /dev/zero are refused at once (the FIFO hung, /dev/zero grew)") {
    auto fifo = (dir.path / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    for (const auto& f : {fifo, std::string("/dev/zero")}) {
      auto v = known_hosts_lookup({f}, {"h"}, ka);
      REQUIRE_FALSE(v);
      CHECK(v.error().code == ErrorCode::usage);
      CHECK_MESSAGE(v.error().message.find("is not a regular file") != std::string::npos,
                    v.error().message);
    }
  }
}

TEST_CASE("known_hosts_lookup: the @cert-authority lines for the host and every @revoked key") {
  const std::string ca =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASxsL7aq4D8fhcKemuGfSxqqnqhMeH8yYxmfDG8DdnK";
  const std::string k =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF1a6WmmugztfMUw6lUnZZ/fza6VH6EDMQbPm+m+XRZl";
  const std::string r =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAy0aWwMwidQwscIp97wx00u79QPEJDRKYUnBPmTwPx/";
  test::TempDir dir;
  auto file = (dir.path / "known_hosts").string();
  REQUIRE(write_file_atomic(file,
                            "@cert-authority 10.213.0.4?,*.fleet.lan " + ca + "\n" + "@revoked * " +
                                r + "\n" + "@cert-authority [10.213.0.4?]:2222 " + r + "\n",
                            0600));
  HostKey presented{"ssh-ed25519", "", k};
  auto v = known_hosts_lookup({file}, known_hosts_names("10.213.0.43", 22), presented);
  REQUIRE(v);
  CHECK(v->kind == KnownHostsVerdict::none);  // no plain line: the certificate decides
  REQUIRE(v->cert_authorities.size() == 1);
  CHECK(v->cert_authorities[0].where == file + ":1");
  CHECK(v->cert_authorities[0].key == ca);
  CHECK(v->revoked_keys == std::vector<std::string>{r});
  // another port is another name: only the [host]:port pattern applies there
  auto p = known_hosts_lookup({file}, known_hosts_names("10.213.0.43", 2222), presented);
  REQUIRE(p->cert_authorities.size() == 1);
  CHECK(p->cert_authorities[0].where == file + ":3");
  CHECK(known_hosts_lookup({file}, known_hosts_names("10.213.0.50", 22), presented)
            ->cert_authorities.empty());
  CHECK(known_hosts_lookup({file}, known_hosts_names("10.9.9.9", 22, "cam.fleet.lan"), presented)
            ->cert_authorities.size() == 1);
}

TEST_CASE("host certificates: OpenSSH's argv verifies one name, offers no credential, no shell") {
  HostCertQuery q;
  q.program = "/usr/bin/ssh";
  q.host = "10.213.0.43";
  q.port = 2222;
  q.user = "pi";
  q.key_type = "ssh-ed25519";
  auto a = host_cert_argv(q, "/tmp/kh file", "");
  auto has = [&](const std::string& w) { return std::find(a.begin(), a.end(), w) != a.end(); };
  CHECK(a.front() == "/usr/bin/ssh");
  CHECK(has("StrictHostKeyChecking=yes"));
  CHECK(has("BatchMode=yes"));
  CHECK(has("HostKeyAlias=10.213.0.43"));  // the principal the certificate must list
  CHECK(has("UserKnownHostsFile=\"/tmp/kh file\""));
  CHECK(has("GlobalKnownHostsFile=/dev/null"));
  CHECK(has("HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com"));
  CHECK(has("PubkeyAuthentication=no"));
  CHECK(has("PasswordAuthentication=no"));
  CHECK(has("IdentityAgent=none"));
  CHECK(has("-v"));
  CHECK_FALSE(has("-W"));
  auto dd = std::find(a.begin(), a.end(), "--");
  REQUIRE(dd != a.end());
  CHECK(*(dd + 1) == "10.213.0.43");
  CHECK(host_cert_algorithms("ecdsa-sha2-nistp256") == "ecdsa-sha2-nistp256-cert-v01@openssh.com");
  CHECK(host_cert_algorithms("ssh-rsa").find("rsa-sha2-512-cert-v01@openssh.com") == 0);
  auto j = host_cert_argv(q, "/tmp/kh", "/usr/bin/ssh -W [%h]:%p -- bast");
  CHECK(std::find(j.begin(), j.end(), "ProxyCommand=/usr/bin/ssh -W [%h]:%p -- bast") != j.end());
}

TEST_CASE("host certificates: OpenSSH's -v log decides (lines from OpenSSH 9.2)") {
  const std::string cert_line =
      "debug1: Server host certificate: ssh-ed25519-cert-v01@openssh.com "
      "SHA256:kYNQZ+ZwEpOCb3CZjIs4CMgdUgOuMgTjJ0kcjs4TqjM, serial 0 ID \"host1\" CA ssh-ed25519 "
      "SHA256:6bTTaOnncNH97PXCf43l2mHxfm30/BU1JiGQpPh38+M valid from 2026-12-03T09:30:38 to "
      "2026-12-03T10:35:38\n";
  const std::string kex =
      "debug1: kex: host key algorithm: ssh-ed25519-cert-v01@openssh.com\n"
      "debug1: SSH2_MSG_KEX_ECDH_REPLY received\n";
  SUBCASE("accepted, and on past key exchange: certified, with the key inside the certificate") {
    auto v =
        parse_host_cert_log(kex + cert_line +
                            "debug1: using hostkeyalias: 127.0.0.1\n"
                            "debug1: Host '127.0.0.1' is known and matches the ED25519-CERT host "
                            "certificate.\n"
                            "debug1: Found CA key in /tmp/kh:1\n"
                            "debug1: SSH2_MSG_NEWKEYS sent\n"
                            "debug1: No more authentication methods to try.\n"
                            "pi@127.0.0.1: Permission denied (publickey).\n");
    REQUIRE(v);
    CHECK(v->certified);
    CHECK(v->fingerprint == "SHA256:kYNQZ+ZwEpOCb3CZjIs4CMgdUgOuMgTjJ0kcjs4TqjM");
    CHECK(v->ca_fingerprint == "SHA256:6bTTaOnncNH97PXCf43l2mHxfm30/BU1JiGQpPh38+M");
  }
  SUBCASE("the CA matched but the name is not a principal: refused, with OpenSSH's reason") {
    auto v =
        parse_host_cert_log(kex + cert_line +
                            "debug1: Host '127.0.0.2' is known and matches the ED25519-CERT host "
                            "certificate.\n"
                            "Certificate invalid: name is not a listed principal\n"
                            "debug1: No matching CA found. Retry with plain key\n"
                            "No ED25519 host key is known for 127.0.0.2 and you have requested "
                            "strict checking.\n"
                            "Host key verification failed.\n");
    REQUIRE(v);
    CHECK_FALSE(v->certified);
    CHECK(v->detail == "Certificate invalid: name is not a listed principal");
  }
  SUBCASE("signed by another CA, or revoked: refused") {
    auto other = parse_host_cert_log(kex + cert_line +
                                     "debug1: No matching CA found. Retry with plain key\n"
                                     "No ED25519 host key is known for 127.0.0.2 and you have "
                                     "requested strict checking.\n"
                                     "Host key verification failed.\n");
    REQUIRE(other);
    CHECK_FALSE(other->certified);
    CHECK(other->detail.find("not by a CA listed for the host") != std::string::npos);
    auto revoked = parse_host_cert_log(
        kex + cert_line +
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
        "@       WARNING: REVOKED HOST KEY DETECTED!               @\n"
        "The ED25519-CERT host key for 127.0.0.2 is marked as revoked.\n"
        "ED25519-CERT host key for 127.0.0.2 was revoked and you have requested strict checking.\n"
        "Host key verification failed.\n");
    REQUIRE(revoked);
    CHECK_FALSE(revoked->certified);
    CHECK(revoked->detail.find("revoked") != std::string::npos);
  }
  SUBCASE("no certificate offered for the key type: refused") {
    auto v = parse_host_cert_log(
        "Unable to negotiate with 10.213.0.41 port 22: no matching host key type found. Their "
        "offer: ssh-ed25519\n");
    REQUIRE(v);
    CHECK_FALSE(v->certified);
    CHECK(v->detail.find("no certificate") != std::string::npos);
  }
  SUBCASE("the host never answered: unreachable, not a verdict") {
    auto v = parse_host_cert_log("ssh: connect to host 10.213.0.99 port 22: Connection refused\n");
    REQUIRE_FALSE(v);
    CHECK(v.error().code == ErrorCode::unreachable);
    CHECK(v.error().message.find("Connection refused") != std::string::npos);
  }
}

TEST_CASE("known_hosts_listed_keys: the key to pin with no connection, per host") {
  const std::string ed =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF1a6WmmugztfMUw6lUnZZ/fza6VH6EDMQbPm+m+XRZl";
  const std::string ed2 =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAy0aWwMwidQwscIp97wx00u79QPEJDRKYUnBPmTwPx/";
  const std::string ec =
      "ecdsa-sha2-nistp256 "
      "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP0FGAg0goYbHq2t2rPmNzHnEvNF"
      "JmadbibaJiUoWUk720cvDva+fohsS+u4xEeyalqla74GrX9KhZM7v4CrE4w=";
  const std::string rv =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASxsL7aq4D8fhcKemuGfSxqqnqhMeH8yYxmfDG8DdnK";
  test::TempDir dir;
  auto file = (dir.path / "known_hosts").string();
  REQUIRE(write_file_atomic(file,
                            "10.0.0.1 " + ec + "\n10.0.0.1 " + ed + "\n[10.0.0.2]:2222 " + ed2 +
                                "\n" + "10.0.0.3 " + rv + "\n@revoked * " + rv + "\n10.0.0.4 " +
                                ed + "\n10.0.0.4 " + ed2 + "\n@cert-authority * " + ed + "\n",
                            0600));
  auto r = known_hosts_listed_keys(
      {file}, {known_hosts_names("10.0.0.1", 22), known_hosts_names("10.0.0.2", 2222),
               known_hosts_names("10.0.0.3", 22), known_hosts_names("10.0.0.9", 22),
               known_hosts_names("10.0.0.5", 22, "10.0.0.1")});
  REQUIRE(r);
  REQUIRE(r->size() == 5);
  REQUIRE((*r)[0].key);
  CHECK((*r)[0].key->key == ed);  // Ed25519 before ECDSA, whatever the order in the file
  CHECK((*r)[0].key->where == file + ":2");
  REQUIRE((*r)[1].key);
  CHECK((*r)[1].key->key == ed2);
  CHECK_FALSE((*r)[2].key);  // its only key is revoked
  CHECK_FALSE((*r)[3].key);  // not listed (an @cert-authority line is no key to pin)
  REQUIRE((*r)[4].key);
  CHECK((*r)[4].key->key == ed);  // by the inventory name
  auto c = known_hosts_listed_keys({file}, {known_hosts_names("10.0.0.4", 22)});
  REQUIRE(c);
  CHECK_FALSE((*c)[0].key);
  CHECK((*c)[0].conflict.find("list different ssh-ed25519 keys") != std::string::npos);
  CHECK(key_fingerprint(ed) ==
        "SHA256:Mr1zLHFhzgjg8EwG4rs74dmo8dwR92SqiJ0qonPgevk");  // ssh-keygen -l
  CHECK(key_fingerprint("ssh-ed25519 !!!") == "");
}

TEST_CASE("device views: add, labels, fan-out footers, check's RTT, exec's names and blocks") {
  using nlohmann::json;
  DeviceAddResult added{json{{"name", "cam-1"}, {"host", "10.0.0.5"}}, true, true, false};
  auto j = device_add_json(added);
  CHECK(j["host"] == "10.0.0.5");
  CHECK(j["changed"] == true);
  CHECK(j["bootstrapped"] == true);
  CHECK(j["token_issued"] == false);
  CHECK(device_add_summary(added, "cam-1") == "device 'cam-1' registered");
  added.changed = false;
  CHECK(device_add_summary(added, "cam-1") ==
        "device 'cam-1' is already registered; nothing changed");

  json devices = json::array({{{"labels", {{"site", "lab"}, {"gpu", "yes"}, {"n", 3}}}},
                              {{"labels", "hand-edited"}},
                              {{"labels", json::object()}}});
  add_labels_text(devices);
  CHECK(devices[0]["labels_text"] == "gpu=yes,n=,site=lab");  // a non-string value shows empty
  CHECK(devices[1]["labels_text"] == "");
  CHECK(devices[2]["labels_text"] == "");

  json report{{"results", json::array({{{"device", "a"}, {"rtt_ms", 1.2345}},
                                       {{"device", "b"}, {"rtt_ms", nullptr}}})},
              {"summary", {{"ok", 1}, {"failed", 0}, {"unreachable", 1}}}};
  CHECK(fan_out_summary(report) == "1 ok, 0 failed, 1 unreachable");
  add_rtt_text(report);
  CHECK(report["results"][0]["rtt_text"] == "1.23");
  CHECK(report["results"][1]["rtt_text"] == "-");

  // CLI11 hands the command after -- to the positional too, once a name filled it.
  using V = std::vector<std::string>;
  CHECK(exec_device_names({"cam-1", "cam-2", "df", "-h"}, {"df", "-h"}) == V{"cam-1", "cam-2"});
  CHECK(exec_device_names({"cam-1"}, {"uptime"}) == V{"cam-1"});
  CHECK(exec_device_names({}, {"uptime"}).empty());
  CHECK(exec_device_names({"uptime"}, {"uptime"}).empty());

  json ran{{"results", json::array({{{"device", "a"},
                                     {"status", "ok"},
                                     {"exit_code", 0},
                                     {"duration_ms", 12},
                                     {"stdout", "up 3 days"},
                                     {"stderr", ""}},
                                    {{"device", "b"},
                                     {"status", "failed"},
                                     {"exit_code", 2},
                                     {"duration_ms", 7},
                                     {"stdout", "x\n"},
                                     {"stderr", "no such file\nsecond line\n"}},
                                    {{"device", "c"},
                                     {"status", "unreachable"},
                                     {"exit_code", nullptr},
                                     {"duration_ms", 1000},
                                     {"stdout", ""},
                                     {"stderr", ""},
                                     {"message", "connection refused"}}})},
           {"summary", {{"ok", 1}, {"failed", 1}, {"unreachable", 1}}}};
  CHECK(exec_text(ran) ==
        "=== a (exit 0, 12 ms)\nup 3 days\n"
        "=== b (exit 2, 7 ms)\nx\nstderr: no such file\nstderr: second line\n"
        "=== c (unreachable, 1000 ms)\nstderr: connection refused\n"
        "1 ok, 1 failed, 1 unreachable\n");
}

TEST_CASE("device views: rekey's object and --host-key") {
  RekeyPlan plan{"cam-1", {"ssh-ed25519", "SHA256:old", ""}, {"ssh-rsa", "SHA256:new", ""}, true};
  auto j = rekey_json(plan);
  CHECK(j == nlohmann::json{{"device", "cam-1"},
                            {"old", {{"type", "ssh-ed25519"}, {"fingerprint", "SHA256:old"}}},
                            {"new", {{"type", "ssh-rsa"}, {"fingerprint", "SHA256:new"}}},
                            {"changed", true}});
  CHECK(rekey_expect(plan, ""));
  CHECK(rekey_expect(plan, "SHA256:new"));
  auto other = rekey_expect(plan, "SHA256:else");
  REQUIRE_FALSE(other);
  CHECK(other.error().code == ErrorCode::host_key);
  CHECK(other.error().message ==
        "device 'cam-1' presents ssh-rsa SHA256:new, not the expected SHA256:else");
}
