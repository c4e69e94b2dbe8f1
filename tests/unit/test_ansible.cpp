// ansible module: inventory rendering (golden), verified known_hosts, callback events, the
// ansible-playbook argv/env, journal-based --resume selection, --max-fail, and a real
// ansible-playbook run against localhost through the shipped callback plugin.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gedge/ansible.hpp"
#include "gedge/cluster.hpp"
#include "gedge/paths.hpp"
#include "test_helpers.hpp"

using namespace gedge;
namespace fs = std::filesystem;

namespace {

// Compares `actual` with tests/golden/<rel>; GEDGE_UPDATE_GOLDEN=1 rewrites the file instead.
void check_golden(const std::string& rel, const std::string& actual) {
  fs::path p = fs::path(GEDGE_SOURCE_DIR) / "tests" / "golden" / rel;
  if (const char* u = std::getenv("GEDGE_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << actual;
    MESSAGE("golden updated: " << p.string());
    return;
  }
  auto expected = read_file(p);
  REQUIRE_MESSAGE(expected, "missing golden " << p.string() << " (GEDGE_UPDATE_GOLDEN=1 writes it)");
  CHECK(*expected == actual);
}

const char* kEd25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIF1a6WmmugztfMUw6lUnZZ/fza6VH6EDMQbPm+m+XRZl";
const char* kEd25519Fp = "SHA256:Mr1zLHFhzgjg8EwG4rs74dmo8dwR92SqiJ0qonPgevk";
const char* kOther = "AAAAC3NzaC1lZDI1NTE5AAAAIAy0aWwMwidQwscIp97wx00u79QPEJDRKYUnBPmTwPx/";

}  // namespace

TEST_CASE("render_inventory is deterministic and checks host keys") {
  ansible::InventorySpec spec;
  spec.known_hosts = "/home/op/.local/share/gedge/runs/lab-1/known_hosts";
  spec.connect_timeout_s = 7;
  spec.hosts.push_back({"edge1", "10.213.0.21", 22, "gedgetest", "/keys/id_ed25519", {{"gedge_role", "member"}}});
  spec.hosts.push_back({"edge2", "10.213.0.22", 2222, "ops", "/keys/other", {{"gedge_role", "server"}}});
  auto text = ansible::render_inventory(spec);
  check_golden("ansible/inventory.yml", text);
  CHECK(text.find("StrictHostKeyChecking=yes") != std::string::npos);
  CHECK(text.find("StrictHostKeyChecking=no") == std::string::npos);
  CHECK(text.find("/dev/null") == std::string::npos);
  CHECK(text.find("ansible_python_interpreter: /usr/bin/python3") != std::string::npos);
  CHECK(ansible::render_inventory(spec) == text);
}

TEST_CASE("ssh_file_option quotes paths with spaces, quotes and % for both shlex and ssh") {
  CHECK(ansible::ssh_file_option("UserKnownHostsFile", "/home/op/gedge/known_hosts") ==
        "-o UserKnownHostsFile=/home/op/gedge/known_hosts");
  CHECK(ansible::ssh_file_option("UserKnownHostsFile", "/tmp/my home/known_hosts") ==
        "-o 'UserKnownHostsFile=\"/tmp/my home/known_hosts\"'");
  // ' closes and reopens the shell quote; " and \\ are escaped for ssh; % is doubled for ssh.
  CHECK(ansible::ssh_file_option("GlobalKnownHostsFile", "/t/it's \"100%\"\\x") ==
        "-o 'GlobalKnownHostsFile=\"/t/it'\"'\"'s \\\"100%%\\\"\\\\x\"'");
  ansible::InventorySpec spec;
  spec.known_hosts = "/tmp/gedge home/runs/a b/known_hosts";
  spec.hosts.push_back({"edge1", "10.213.0.21", 22, "gedgetest", "/tmp/gedge home/id_ed25519", {}});
  auto text = ansible::render_inventory(spec);
  CHECK(text.find("'UserKnownHostsFile=\"/tmp/gedge home/runs/a b/known_hosts\"'") != std::string::npos);
  CHECK(text.find("'GlobalKnownHostsFile=\"/tmp/gedge home/runs/a b/known_hosts\"'") != std::string::npos);
}

TEST_CASE("verified_known_hosts_lines keeps only keys that match the pinned fingerprint") {
  auto fp = ansible::key_fingerprint("ssh-ed25519", kEd25519);
  REQUIRE(fp);
  CHECK(*fp == kEd25519Fp);
  std::string kh = std::string("# comment\n") + "10.213.0.21 ssh-ed25519 " + kEd25519 + "\n" +
                   "[10.213.0.22]:2222 ssh-ed25519 " + kOther + "\n" + "other,10.213.0.23 ssh-ed25519 " + kEd25519 + "\n";
  SUBCASE("match on port 22") {
    auto r = ansible::verified_known_hosts_lines(kh, "10.213.0.21", 22, kEd25519Fp, "edge1");
    REQUIRE(r);
    CHECK(*r == std::string("10.213.0.21 ssh-ed25519 ") + kEd25519 + "\n");
  }
  SUBCASE("comma-separated host list") {
    auto r = ansible::verified_known_hosts_lines(kh, "10.213.0.23", 22, kEd25519Fp, "edge3");
    REQUIRE(r);
  }
  SUBCASE("a different key is refused as a host-key error") {
    auto r = ansible::verified_known_hosts_lines(kh, "10.213.0.22", 2222, kEd25519Fp, "edge2");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::host_key);
    CHECK(r.error().message.find("does not match") != std::string::npos);
  }
  SUBCASE("absent entry and absent pin") {
    CHECK(ansible::verified_known_hosts_lines(kh, "10.213.0.99", 22, kEd25519Fp, "x").error().code ==
          ErrorCode::host_key);
    CHECK(ansible::verified_known_hosts_lines(kh, "10.213.0.21", 22, "", "x").error().code == ErrorCode::host_key);
  }
  CHECK(ansible::known_hosts_marker("h", 22) == "h");
  CHECK(ansible::known_hosts_marker("h", 2222) == "[h]:2222");
}

TEST_CASE("parse_event reads callback lines") {
  auto e = ansible::parse_event(
      R"({"changed": true, "diff": "--- a\n+++ b", "event": "ok", "host": "edge1", "msg": "", "task": "registry_trust : Trust the cluster registry"})");
  REQUIRE(e);
  CHECK(e->type == "ok");
  CHECK(e->host == "edge1");
  CHECK(e->changed);
  CHECK(e->task == "registry_trust : Trust the cluster registry");
  CHECK(e->diff == "--- a\n+++ b");
  auto u = ansible::parse_event(R"({"event": "unreachable", "host": "h7", "task": "Gathering Facts", "msg": "ssh: connect to host 10.213.0.17 port 22: No route to host", "changed": false})");
  REQUIRE(u);
  CHECK(u->type == "unreachable");
  CHECK(u->msg.find("No route") != std::string::npos);
  // A stalled connection (link dropped mid-run) shows up as a become-prompt timeout: unreachable.
  auto b = ansible::parse_event(R"({"event": "failed", "host": "h8", "task": "Probe", "msg": "Timeout (7s) waiting for privilege escalation prompt: "})");
  REQUIRE(b);
  CHECK(b->type == "unreachable");
  auto f = ansible::parse_event(R"({"event": "failed", "host": "h8", "task": "Probe", "msg": "non-zero return code"})");
  REQUIRE(f);
  CHECK(f->type == "failed");
  auto s = ansible::parse_event(R"({"event": "stats", "hosts": {"edge1": {"ok": 5, "changed": 1, "failures": 0, "unreachable": 0}}})");
  REQUIRE(s);
  CHECK(s->stats["edge1"]["ok"] == 5);
  auto k = ansible::parse_event(R"({"event": "skipped", "host": "a", "task": "t", "check_mode_skip": true})");
  REQUIRE(k);
  CHECK(k->check_mode_skip);
  CHECK_FALSE(ansible::parse_event("PLAY RECAP ****"));
  CHECK_FALSE(ansible::parse_event("{not json"));
  CHECK_FALSE(ansible::parse_event(R"({"event": "weird"})"));
  CHECK_FALSE(ansible::parse_event(R"({"no_event": 1})"));
  CHECK_FALSE(ansible::parse_event(""));
}

TEST_CASE("playbook_argv and env: no shell, check mode, our callback") {
  ansible::RunSpec spec;
  spec.playbook = "/pb/containers.yml";
  spec.playbook_dir = "/pb";
  spec.run_dir = "/run/x";
  spec.forks = 3;
  spec.limit = {"a", "b"};
  auto argv = ansible::playbook_argv(spec);
  std::vector<std::string> want = {"ansible-playbook", "-i", "/run/x/inventory.yml", "-e", "@/run/x/vars.json",
                                   "--forks", "3", "--limit", "a,b", "/pb/containers.yml"};
  CHECK(argv == want);
  spec.check = true;
  spec.skip_tags = {"verify"};
  argv = ansible::playbook_argv(spec);
  CHECK(std::find(argv.begin(), argv.end(), "--check") != argv.end());
  CHECK(std::find(argv.begin(), argv.end(), "--diff") != argv.end());
  CHECK(std::find(argv.begin(), argv.end(), "verify") != argv.end());
  auto env = ansible::playbook_env(spec, 3);
  CHECK(env["ANSIBLE_STDOUT_CALLBACK"] == "gedge_events");
  CHECK(env["GEDGE_EVENTS_FD"] == "3");
  CHECK(env["ANSIBLE_HOST_KEY_CHECKING"] == "True");
  CHECK(env["ANSIBLE_CALLBACK_PLUGINS"] == "/pb/callback_plugins");
  CHECK(ansible::render_ansible_cfg(spec).find("host_key_checking = True") != std::string::npos);
  spec.timeout_s = 4;  // --timeout reaches Ansible's own connect timeout (it precedes the inventory's)
  CHECK(ansible::render_ansible_cfg(spec).find("\ntimeout = 4\n") != std::string::npos);
}

TEST_CASE("select_resume picks devices whose latest journal row is not a completion") {
  using cluster::JournalEntry;
  std::vector<JournalEntry> j = {
      {1, "a", "r1", "podman", "ok"},          {2, "b", "r1", "podman", "changed"},
      {3, "c", "r1", "Gathering Facts", "unreachable"},
      {4, "a", "r1", cluster::kStepComplete, "ok"},
      {5, "b", "r1", "smoke", "failed"},
      // a later run of d was interrupted after one step
      {6, "d", "r1", cluster::kStepComplete, "ok"}, {7, "d", "r2", "podman", "ok"}};
  auto r = cluster::select_resume({"a", "b", "c", "d", "e"}, j);
  CHECK(r == std::vector<std::string>{"b", "c", "d", "e"});
  // After b and c complete in run r3, only d and e remain.
  j.push_back({8, "b", "r3", cluster::kStepComplete, "ok"});
  j.push_back({9, "c", "r3", cluster::kStepComplete, "ok"});
  CHECK(cluster::select_resume({"a", "b", "c", "d", "e"}, j) == std::vector<std::string>{"d", "e"});
  CHECK(cluster::select_resume({}, j).empty());
}

TEST_CASE("--max-fail parses counts and percentages") {
  auto n = cluster::parse_max_fail("1");
  REQUIRE(n);
  CHECK_FALSE(n->exceeded(1, 3));
  CHECK(n->exceeded(2, 3));
  auto p = cluster::parse_max_fail("50%");
  REQUIRE(p);
  CHECK_FALSE(p->exceeded(2, 4));
  CHECK(p->exceeded(3, 4));
  CHECK_FALSE(cluster::MaxFail{}.exceeded(100, 100));
  for (const char* bad : {"", "-1", "x", "101%", "5%%", "1.5"}) CHECK(cluster::parse_max_fail(bad).error().code == ErrorCode::usage);
}

TEST_CASE("a real ansible-playbook run streams events through the shipped callback") {
  if (!fs::exists("/usr/bin/ansible-playbook")) {
    MESSAGE("ansible-playbook not installed; skipped");
    return;
  }
  test::TempDir tmp;
  fs::path pbdir = fs::path(GEDGE_SOURCE_DIR) / "playbooks";
  fs::path pb = tmp.path / "local.yml";
  std::ofstream(pb) << "- name: Local\n  hosts: all\n  gather_facts: false\n  tasks:\n"
                       "    - name: Write a file\n      ansible.builtin.copy:\n        dest: \""
                    << (tmp.path / "out.txt").string()
                    << "\"\n        content: hi\n        mode: \"0600\"\n"
                       "    - name: Fail on purpose\n      ansible.builtin.command: /bin/false\n";
  ansible::RunSpec spec;
  spec.playbook = pb;
  spec.playbook_dir = pbdir;
  spec.run_dir = tmp.path / "run";
  spec.inventory_text = "all:\n  hosts:\n    local1:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n";
  std::vector<ansible::Event> events;
  auto rr = ansible::run_playbook(spec, [&](const ansible::Event& e) { events.push_back(e); });
  REQUIRE_MESSAGE(rr, rr.error().message);
  CHECK(rr->exit_code == 2);  // a host failed
  bool changed = false, failed = false;
  for (const auto& e : events) {
    if (e.type == "ok" && e.task == "Write a file" && e.changed) changed = true;
    if (e.type == "failed" && e.task == "Fail on purpose" && e.host == "local1") failed = true;
  }
  CHECK(changed);
  CHECK(failed);
  REQUIRE(rr->stats.contains("local1"));
  CHECK(rr->stats["local1"]["failures"] == 1);
  CHECK(fs::exists(tmp.path / "out.txt"));
}
