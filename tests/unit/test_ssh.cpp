// Unit tests for the ssh module's pure parts: shell quoting, label filters, status mapping,
// the fan-out exit decision, facts parsing, SHA-256, the device registry's local verbs and
// known_hosts maintenance.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "gedge/device.hpp"
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
    std::vector<std::string> argv = {"printf", "%s\\n", "a b", "$(touch /tmp/gedge-pwned)", "`id`",
                                     "it's", "\"q\"", ";", "&&", "*", "$HOME", "back\\slash", "new\nline"};
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
  auto p = fan_out_error(nlohmann::json::array({res("ok"), res("unreachable", "unreachable")}), "x");
  REQUIRE(p);
  CHECK(p->code == ErrorCode::partial);
  CHECK(exit_code_for(p->code) == 3);
  auto u = fan_out_error(nlohmann::json::array({res("unreachable", "unreachable"), res("unreachable", "unreachable")}), "x");
  REQUIRE(u);
  CHECK(exit_code_for(u->code) == 5);
  auto h = fan_out_error(
      nlohmann::json::array({res("unreachable", "unreachable"), res("host_key_mismatch", "host_key")}), "x");
  REQUIRE(h);
  CHECK(h->code == ErrorCode::host_key);
  auto a = fan_out_error(nlohmann::json::array({res("auth_failed", "auth")}), "x");
  REQUIRE(a);
  CHECK(exit_code_for(a->code) == 6);
  SUBCASE("error names as printed in results (auth_failed, host_key_mismatch)") {
    auto e = fan_out_error(
        nlohmann::json::array({res("unreachable", "unreachable"), res("auth_failed", "auth_failed")}), "x");
    REQUIRE(e);
    CHECK(e->code == ErrorCode::auth);
    auto k = fan_out_error(nlohmann::json::array({res("token_mismatch", "host_key_mismatch")}), "x");
    REQUIRE(k);
    CHECK(k->code == ErrorCode::host_key);
  }
  auto f = fan_out_error(nlohmann::json::array({res("failed", "failure")}), "x");
  REQUIRE(f);
  CHECK(exit_code_for(f->code) == 1);
}

TEST_CASE("parse_facts reads the facts script's sections") {
  std::string out =
      "@@arch\nx86_64\n@@kernel\n6.1.0\n@@hostname\nh1\n@@os\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
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
  SUBCASE("a truncated answer is not complete") { CHECK(parse_facts("@@arch\nx86_64\n")["complete"] == false); }
  SUBCASE("no runtime, no gpus") {
    auto g = parse_facts("@@gpus\n@@podman\n@@docker\n@@end\n");
    CHECK(g["gpus"].empty());
    CHECK(g["container_runtime"].is_null());
  }
}

TEST_CASE("sha256_hex matches the FIPS test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("known_hosts_update replaces one host's line and keeps the others") {
  test::TempDir dir;
  auto file = dir.path / "known_hosts";
  SshTarget a{"a", "10.0.0.1", 22, "", "", {}};
  SshTarget b{"b", "10.0.0.2", 2222, "", "", {}};
  REQUIRE(known_hosts_update(file, a, "ssh-ed25519 AAAA1"));
  REQUIRE(known_hosts_update(file, b, "ssh-ed25519 BBBB"));
  REQUIRE(known_hosts_update(file, a, "ssh-ed25519 AAAA2"));
  auto text = *read_file(file);
  CHECK(text.find("10.0.0.1 ssh-ed25519 AAAA2\n") != std::string::npos);
  CHECK(text.find("AAAA1") == std::string::npos);
  CHECK(text.find("[10.0.0.2]:2222 ssh-ed25519 BBBB\n") != std::string::npos);
  REQUIRE(known_hosts_update(file, a, ""));
  text = *read_file(file);
  CHECK(text.find("10.0.0.1 ") == std::string::npos);
  CHECK(text.find("BBBB") != std::string::npos);
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
  SUBCASE("a refused connection is unreachable (exit 5), quickly") {
    // Port 1 on loopback: nothing listens, the kernel refuses at once.
    SshTarget t{"dead", "127.0.0.1", 1, "nobody", "", {}};
    auto opts = default_ssh_options(paths, 5);
    opts.use_ssh_config = false;
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
