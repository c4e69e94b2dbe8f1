// ansible module: inventory rendering (golden), verified known_hosts, callback events, the
// ansible-playbook argv/env, journal-based --resume selection, --max-fail, and a real
// ansible-playbook run against localhost through the shipped callback plugin.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "../../libgedge/src/ansible/cluster_detail.hpp"
#include "../../libgedge/src/inventory/raw.hpp"
#include "gedge/ansible.hpp"
#include "gedge/cluster.hpp"
#include "gedge/device.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "test_helpers.hpp"

using namespace gedge;
namespace fs = std::filesystem;

namespace {

using test::check_golden;

const char* kEd25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIF1a6WmmugztfMUw6lUnZZ/fza6VH6EDMQbPm+m+XRZl";
const char* kEd25519Fp = "SHA256:Mr1zLHFhzgjg8EwG4rs74dmo8dwR92SqiJ0qonPgevk";
const char* kOther = "AAAAC3NzaC1lZDI1NTE5AAAAIAy0aWwMwidQwscIp97wx00u79QPEJDRKYUnBPmTwPx/";

}  // namespace

TEST_CASE("render_inventory is deterministic and checks host keys") {
  ansible::InventorySpec spec;
  spec.known_hosts = "/home/op/.local/share/gedge/runs/lab-1/known_hosts";
  spec.connect_timeout_s = 7;
  spec.hosts.push_back(
      {"edge1", "10.213.0.21", 22, "gedgetest", "/keys/id_ed25519", {{"gedge_role", "member"}}});
  spec.hosts.push_back(
      {"edge2", "10.213.0.22", 2222, "ops", "/keys/other", {{"gedge_role", "server"}}});
  auto text = ansible::render_inventory(spec);
  check_golden("ansible/inventory.yml", text);
  CHECK(text.find("StrictHostKeyChecking=yes") != std::string::npos);
  CHECK(text.find("StrictHostKeyChecking=no") == std::string::npos);
  CHECK(text.find("KnownHostsFile=/dev/null") == std::string::npos);
  CHECK(text.find("-F /dev/null") != std::string::npos);  // the resolved record, not ~/.ssh/config
  CHECK(text.find("ansible_python_interpreter: /usr/bin/python3") != std::string::npos);
  CHECK(ansible::render_inventory(spec) == text);
}

TEST_CASE(
    "inventory_host: HostKeyAlias per device, agent-only without a forced key, the jump as "
    "ProxyCommand") {
  SshTarget key{"edge1", "10.213.0.21", 22, "gedgetest", "", {"ssh-ed25519", kEd25519Fp, ""}};
  key.auth = "gedge_key";
  auto h = ansible::inventory_host(key, "/g/id_ed25519", "/run/kh", 7);
  CHECK(h.identity == "/g/id_ed25519");
  CHECK(h.identities_only);
  CHECK(h.host_key_alias == "edge1");
  CHECK(h.proxy_command.empty());

  SshTarget agent = key;
  agent.name = "edge2";
  agent.auth = "agent";
  agent.identity_agent = "/run/my agent.sock";
  auto a = ansible::inventory_host(agent, "/g/id_ed25519", "/run/kh", 7);
  CHECK(a.identity.empty());
  CHECK_FALSE(a.identities_only);

  SshTarget inner = key;
  inner.name = "inner1";
  inner.host = "10.213.2.10";
  inner.jump =
      JumpHost{"10.213.0.41", 22,
               "gedgetest",   "",
               "inner1/jump", {"ssh-ed25519", kEd25519Fp, std::string("ssh-ed25519 ") + kEd25519}};
  auto j = ansible::inventory_host(inner, "/g/id_ed25519", "/run/kh", 7);
  CHECK(j.proxy_command.find("HostKeyAlias=inner1/jump") != std::string::npos);
  CHECK(j.proxy_command.find("-W '[%h]:%p' -- 10.213.0.41") != std::string::npos);

  ansible::InventorySpec spec;
  spec.known_hosts = "/run/kh";
  spec.connect_timeout_s = 7;
  spec.hosts = {h, a, j};
  auto text = ansible::render_inventory(spec);
  check_golden("ansible/inventory-ssh.yml", text);
  CHECK(text.find("ansible_ssh_extra_args: -o HostKeyAlias=edge1 -o IdentitiesOnly=yes") !=
        std::string::npos);
  CHECK(text.find("HostKeyAlias=edge2 -o 'IdentityAgent=\"/run/my agent.sock\"'") !=
        std::string::npos);

  // The run's known_hosts: the device's line under its alias (also found under the old
  // [host]:port marker) and the jump's pinned line under the jump alias.
  auto lines = ansible::device_known_hosts_lines(
      std::string("10.213.2.10 ssh-ed25519 ") + kEd25519 + "\n", inner);
  REQUIRE(lines);
  CHECK(*lines == std::string("inner1 ssh-ed25519 ") + kEd25519 + "\ninner1/jump ssh-ed25519 " +
                      kEd25519 + "\n");
  inner.jump->host_key.public_key.clear();
  CHECK(
      ansible::device_known_hosts_lines(std::string("inner1 ssh-ed25519 ") + kEd25519 + "\n", inner)
          .error()
          .code == ErrorCode::host_key);
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
  CHECK(text.find("'UserKnownHostsFile=\"/tmp/gedge home/runs/a b/known_hosts\"'") !=
        std::string::npos);
  CHECK(text.find("'GlobalKnownHostsFile=\"/tmp/gedge home/runs/a b/known_hosts\"'") !=
        std::string::npos);
}

TEST_CASE("verified_known_hosts_lines keeps only keys that match the pinned fingerprint") {
  auto fp = ansible::key_fingerprint("ssh-ed25519", kEd25519);
  REQUIRE(fp);
  CHECK(*fp == kEd25519Fp);
  std::string kh = std::string("# comment\n") + "10.213.0.21 ssh-ed25519 " + kEd25519 + "\n" +
                   "[10.213.0.22]:2222 ssh-ed25519 " + kOther + "\n" +
                   "other,10.213.0.23 ssh-ed25519 " + kEd25519 + "\n";
  SUBCASE("match on port 22") {
    auto r = ansible::verified_known_hosts_lines(kh, "10.213.0.21", 22, kEd25519Fp, "edge1");
    REQUIRE(r);
    CHECK(*r ==
          std::string("edge1 ssh-ed25519 ") + kEd25519 + "\n");  // written under the HostKeyAlias
  }
  SUBCASE("a line under the device's alias") {
    auto r = ansible::verified_known_hosts_lines(
        std::string("edge9 ssh-ed25519 ") + kEd25519 + "\n", "10.9.9.9", 22, kEd25519Fp, "edge9");
    REQUIRE(r);
    CHECK(*r == std::string("edge9 ssh-ed25519 ") + kEd25519 + "\n");
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
    CHECK(
        ansible::verified_known_hosts_lines(kh, "10.213.0.99", 22, kEd25519Fp, "x").error().code ==
        ErrorCode::host_key);
    CHECK(ansible::verified_known_hosts_lines(kh, "10.213.0.21", 22, "", "x").error().code ==
          ErrorCode::host_key);
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
  auto u = ansible::parse_event(
      R"({"event": "unreachable", "host": "h7", "task": "Gathering Facts", "msg": "ssh: connect to host 10.213.0.17 port 22: No route to host", "changed": false})");
  REQUIRE(u);
  CHECK(u->type == "unreachable");
  CHECK(u->msg.find("No route") != std::string::npos);
  // A stalled connection (link dropped mid-run) shows up as a become-prompt timeout: unreachable.
  auto b = ansible::parse_event(
      R"({"event": "failed", "host": "h8", "task": "Probe", "msg": "Timeout (7s) waiting for privilege escalation prompt: "})");
  REQUIRE(b);
  CHECK(b->type == "unreachable");
  auto f = ansible::parse_event(
      R"({"event": "failed", "host": "h8", "task": "Probe", "msg": "non-zero return code"})");
  REQUIRE(f);
  CHECK(f->type == "failed");
  auto s = ansible::parse_event(
      R"({"event": "stats", "hosts": {"edge1": {"ok": 5, "changed": 1, "failures": 0, "unreachable": 0}}})");
  REQUIRE(s);
  CHECK(s->stats["edge1"]["ok"] == 5);
  auto k = ansible::parse_event(
      R"({"event": "skipped", "host": "a", "task": "t", "check_mode_skip": true})");
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
  std::vector<std::string> want = {
      "ansible-playbook", "-i",  "/run/x/inventory.yml", "-e", "@/run/x/vars.json", "--forks", "3",
      "--limit",          "a,b", "/pb/containers.yml"};
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
  spec.timeout_s =
      4;  // --timeout reaches Ansible's own connect timeout (it precedes the inventory's)
  CHECK(ansible::render_ansible_cfg(spec).find("\ntimeout = 4\n") != std::string::npos);
}

TEST_CASE("select_resume picks devices whose latest journal row is not a completion") {
  using cluster::JournalEntry;
  std::vector<JournalEntry> j = {{1, "a", "r1", "podman", "ok"},
                                 {2, "b", "r1", "podman", "changed"},
                                 {3, "c", "r1", "Gathering Facts", "unreachable"},
                                 {4, "a", "r1", cluster::kStepComplete, "ok"},
                                 {5, "b", "r1", "smoke", "failed"},
                                 // a later run of d was interrupted after one step
                                 {6, "d", "r1", cluster::kStepComplete, "ok"},
                                 {7, "d", "r2", "podman", "ok"}};
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
  for (const char* bad : {"", "-1", "x", "101%", "5%%", "1.5"})
    CHECK(cluster::parse_max_fail(bad).error().code == ErrorCode::usage);
}

TEST_CASE("a real ansible-playbook run streams events through the shipped callback") {
  if (!fs::exists("/usr/bin/ansible-playbook")) {
    MESSAGE("ansible-playbook not installed; skipped");
    return;
  }
  test::TempDir tmp;
  fs::path pbdir = fs::path(gedge::test::source_dir()) / "playbooks";
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
  spec.inventory_text =
      "all:\n  hosts:\n    local1:\n      ansible_connection: local\n      "
      "ansible_python_interpreter: /usr/bin/python3\n";
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

// ---- monitoring: the target file, alert rules and Grafana dashboard ---------------------------

namespace {

// A home with devices edge1 (site/tier/labels), edge2 (no labels) and cluster "mon" of both plus
// a member whose device row is gone (`device rm --force`).
struct MonitoringFixture {
  test::TempDir tmp;
  Inventory inv = Inventory::open(tmp.path / "inventory.db", true).value();
  MonitoringFixture() {
    const char* now = "2026-01-01T00:00:00Z";
    REQUIRE(InventoryRaw::exec(
        inv,
        "INSERT INTO devices(name, host, user, tier, site, labels, created_at, updated_at) "
        "VALUES ('edge1', '10.0.0.1', 'u', 'local', 'lab-a', ?, ?, ?)",
        {std::string(
             R"({"rack":"r1","gpu.vendor":"nvidia","site":"spoof","gedge_cluster":"spoof","__x":"y","9lives":"cat"})"),
         std::string(now), std::string(now)}));
    REQUIRE(InventoryRaw::exec(
        inv,
        "INSERT INTO devices(name, host, user, created_at, updated_at) VALUES ('edge2', "
        "'fd00::2', 'u', ?, ?)",
        {std::string(now), std::string(now)}));
    REQUIRE(InventoryRaw::exec(
        inv,
        "INSERT INTO clusters(name, kind, profile, monitoring, state, created_at, updated_at) "
        "VALUES ('mon', 'devices', 'containers', 1, 'ready', ?, ?)",
        {std::string(now), std::string(now)}));
    for (const char* d : {"edge1", "edge2", "gone"})
      REQUIRE(InventoryRaw::exec(
          inv, "INSERT INTO cluster_members(cluster, device, state) VALUES ('mon', ?, 'ready')",
          {std::string(d)}));
    REQUIRE(InventoryRaw::exec(
        inv,
        "UPDATE cluster_members SET metrics_url = 'http://10.0.0.1:9100/metrics' WHERE "
        "device = 'edge1'"));
  }
};

std::string run_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) out += "\n(exit " + std::to_string(rc) + ")";
  return out;
}

}  // namespace

TEST_CASE("prom_label_name makes any key a Prometheus label name") {
  CHECK(cluster::prom_label_name("rack") == "rack");
  CHECK(cluster::prom_label_name("gpu.vendor") == "gpu_vendor");
  CHECK(cluster::prom_label_name("app/name-x") == "app_name_x");
  CHECK(cluster::prom_label_name("9lives") == "_9lives");
  CHECK(cluster::prom_label_name("") == "_");
}

TEST_CASE(
    "the target file lists every member with gedge's labels, site, tier and the device's labels") {
  MonitoringFixture f;
  auto targets = cluster::prometheus_targets(f.inv, "mon");
  REQUIRE(targets);
  REQUIRE(targets->size() == 2);  // "gone" has no device row any more
  const auto& e1 = (*targets)[0];
  CHECK(e1.address == "10.0.0.1:9100");
  CHECK(e1.labels.at("gedge_cluster") == "mon");
  CHECK(e1.labels.at("gedge_device") == "edge1");
  CHECK(e1.labels.at("site") == "lab-a");  // the device's own site, not its label "site"
  CHECK(e1.labels.at("tier") == "local");
  CHECK(e1.labels.at("rack") == "r1");
  CHECK(e1.labels.at("gpu_vendor") == "nvidia");
  CHECK(e1.labels.at("_9lives") == "cat");
  CHECK_FALSE(e1.labels.count("__x"));
  const auto& e2 = (*targets)[1];
  CHECK(e2.address == "[fd00::2]:9100");
  CHECK_FALSE(e2.labels.count("site"));
  CHECK_FALSE(e2.labels.count("tier"));

  auto sd = nlohmann::json::parse(cluster::render_sd(*targets));
  REQUIRE(sd.is_array());
  CHECK(sd[0]["targets"] == nlohmann::json::array({"10.0.0.1:9100"}));
  CHECK(sd[1]["labels"]["gedge_device"] == "edge2");
  CHECK(cluster::render_sd({}) == "[]\n");
  CHECK(cluster::sd_path("mon") == "/etc/prometheus/gedge/targets/mon.json");
}

TEST_CASE(
    "cluster export: prometheus-sd, prometheus-rules and grafana; unknown formats are usage "
    "errors") {
  MonitoringFixture f;
  ::setenv("GEDGE_PLAYBOOK_DIR", (fs::path(gedge::test::source_dir()) / "playbooks").c_str(), 1);
  Paths paths;
  auto sd = cluster::export_text(f.inv, paths, "mon", "prometheus-sd");
  REQUIRE(sd);
  CHECK(*sd == cluster::render_sd(cluster::prometheus_targets(f.inv, "mon").value()));
  auto rules = cluster::export_text(f.inv, paths, "mon", "prometheus-rules");
  REQUIRE(rules);
  for (const char* a : {"GedgeDeviceDown", "GedgeDiskNearlyFull", "GedgeMemoryPressure",
                        "GedgeNodeExporterMissing"})
    CHECK(rules->find(a) != std::string::npos);
  auto g = cluster::export_text(f.inv, paths, "mon", "grafana");
  REQUIRE(g);
  CHECK(nlohmann::json::parse(*g) == cluster::grafana_dashboard("mon"));
  auto bad = cluster::export_text(f.inv, paths, "mon", "nagios");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::usage);
  CHECK(bad.error().message.find("prometheus-rules") != std::string::npos);
}

TEST_CASE(
    "members behind jump hosts: which Prometheus server can scrape them is said, not hidden") {
  MonitoringFixture f;
  const char* now = "2026-01-01T00:00:00Z";
  auto hop = [](const char* host) {
    return nlohmann::json{{"host", host},
                          {"port", 22},
                          {"user", "u"},
                          {"identity", ""},
                          {"host_key", {{"type", "ssh-ed25519"}, {"fingerprint", "SHA256:x"}}}};
  };
  // bast1 is reached directly, bast2 through bast1, inner2 through bast1 then bast2.
  auto in2 = hop("10.1.2.20");
  in2["via"] = nlohmann::json::array({hop("10.1.0.41")});
  for (auto [name, host, jump] :
       {std::tuple<std::string, std::string, SqlValue>{"bast1", "10.1.0.41", nullptr},
        {"bast2", "10.1.2.20", hop("10.1.0.41").dump()},
        {"inner2", "10.1.3.10", in2.dump()}}) {
    REQUIRE(InventoryRaw::exec(
        f.inv,
        "INSERT INTO devices(name, host, user, proxy_jump, created_at, updated_at) VALUES (?, ?, "
        "'u', ?, ?, ?)",
        {name, host, jump, std::string(now), std::string(now)}));
  }
  REQUIRE(InventoryRaw::exec(
      f.inv,
      "INSERT INTO cluster_members(cluster, device, state) VALUES ('mon', 'inner2', "
      "'ready')"));
  auto far = [&](const std::string& prom) {
    auto r = cluster::detail::unscrapable_members(f.inv, "mon", prom);
    REQUIRE(r);
    return *r;
  };
  // From here, or from bast1 (another network than inner2's): inner2 is named, with its chain.
  for (const char* prom : {"localhost", "bast1", "edge1"}) {
    auto w = far(prom);
    REQUIRE(w.size() == 1);
    CHECK(w[0].first == "inner2");
    CHECK(w[0].second.find("(10.1.0.41:22,10.1.2.20:22)") != std::string::npos);
    CHECK(w[0].second.find("10.1.3.10:9100") != std::string::npos);
    CHECK(w[0].second.find(std::string("'") + prom + "'") != std::string::npos);
  }
  // bast2, its last jump host, is on its network.
  CHECK(far("bast2").empty());
  // The scrape configuration names the members it leaves out, and why.
  Paths paths;
  auto prom = cluster::export_text(f.inv, paths, "mon", "prometheus");
  REQUIRE(prom);
  CHECK(prom->find("# not listed: edge2 (no metrics endpoint recorded") != std::string::npos);
  CHECK(prom->find("# not listed: inner2 (") != std::string::npos);
  CHECK(prom->find("10.0.0.1:9100") != std::string::npos);
}

TEST_CASE(
    "promtool accepts the shipped rules, and the server configuration with gedge's target file") {
  if (run_out("command -v promtool").find("promtool") == std::string::npos) {
    MESSAGE("promtool not installed (Debian package prometheus): skipped");
    return;
  }
  MonitoringFixture f;
  fs::path files = fs::path(gedge::test::source_dir()) / "playbooks/roles/prometheus_server/files";
  auto rules_out = run_out("promtool check rules " + (files / "gedge.rules.yml").string());
  CHECK_MESSAGE(rules_out.find("SUCCESS: 5 rules found") != std::string::npos, rules_out);
  // The shipped prometheus.yml with its paths moved into a temporary directory.
  auto cfg = read_file(files / "prometheus.yml");
  REQUIRE(cfg);
  std::string text = *cfg;
  auto dir = f.tmp.path.string();
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"/etc/prometheus/gedge/targets/", dir + "/targets/"},
        {"/etc/prometheus/gedge/", dir + "/"}})
    for (size_t p; (p = text.find(from)) != std::string::npos;) text.replace(p, from.size(), to);
  fs::create_directories(f.tmp.path / "targets");
  fs::copy_file(files / "gedge.rules.yml", f.tmp.path / "gedge.rules.yml");
  REQUIRE(write_file_atomic(f.tmp.path / "targets/mon.json",
                            cluster::render_sd(cluster::prometheus_targets(f.inv, "mon").value()),
                            0644));
  REQUIRE(write_file_atomic(f.tmp.path / "prometheus.yml", text, 0644));
  auto out = run_out("promtool check config " + (f.tmp.path / "prometheus.yml").string());
  CHECK_MESSAGE(out.find("is valid prometheus config file syntax") != std::string::npos, out);
  CHECK_MESSAGE(out.find("1 rule files found") != std::string::npos, out);
  CHECK_MESSAGE(out.find("(exit") == std::string::npos, out);
  // A broken target file is refused by the same check (so the check above did read ours).
  REQUIRE(
      write_file_atomic(f.tmp.path / "targets/mon.json", R"([{"targets": "not a list"}])", 0644));
  CHECK(
      run_out("promtool check config " + (f.tmp.path / "prometheus.yml").string()).find("(exit") !=
      std::string::npos);
}

// The fields and constraints of Grafana's dashboard schema (grafana/grafana
// kinds/dashboard/dashboard_kind.cue, the classic JSON model) that a dashboard gedge writes uses.
TEST_CASE("the Grafana dashboard follows Grafana's dashboard schema") {
  auto d = cluster::grafana_dashboard("lab.one");
  auto is_uint = [](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= 0;
  };
  // Dashboard: the typed fields it sets.
  REQUIRE(d.is_object());
  CHECK(d["uid"].is_string());
  CHECK(d["uid"].get<std::string>().size() <= 40);
  for (char c : d["uid"].get<std::string>())
    CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
  CHECK(d["title"] == "gedge cluster lab.one");
  CHECK((d["style"] == "dark" || d["style"] == "light"));
  CHECK(d["timezone"].is_string());
  CHECK(d["editable"].is_boolean());
  CHECK((d["graphTooltip"] == 0 || d["graphTooltip"] == 1 || d["graphTooltip"] == 2));
  CHECK(is_uint(d["schemaVersion"]));
  CHECK(d["schemaVersion"].get<int>() <= 65535);
  CHECK(is_uint(d["version"]));
  CHECK(is_uint(d["fiscalYearStartMonth"]));
  CHECK(d["fiscalYearStartMonth"].get<int>() < 12);
  CHECK(d["time"]["from"].is_string());
  CHECK(d["time"]["to"].is_string());
  CHECK((d["refresh"].is_string() || d["refresh"] == false));
  CHECK(d["tags"].is_array());
  for (const auto& t : d["tags"]) CHECK(t.is_string());
  CHECK(d["links"].is_array());
  // Annotations: #AnnotationQuery requires name, datasource, enable, iconColor.
  for (const auto& a : d["annotations"]["list"]) {
    CHECK(a["name"].is_string());
    CHECK(a["datasource"].is_object());
    CHECK(a["enable"].is_boolean());
    CHECK(a["iconColor"].is_string());
  }
  // Variables: #VariableModel requires type (one of #VariableType) and name; hide 0|1|2.
  const std::set<std::string> var_types = {"query",    "adhoc",   "constant", "datasource",
                                           "interval", "textbox", "custom",   "system"};
  REQUIRE(d["templating"]["list"].is_array());
  std::set<std::string> var_names;
  for (const auto& v : d["templating"]["list"]) {
    REQUIRE(v["type"].is_string());
    CHECK(var_types.count(v["type"].get<std::string>()));
    CHECK(v["name"].is_string());
    var_names.insert(v["name"].get<std::string>());
    CHECK((v["hide"] == 0 || v["hide"] == 1 || v["hide"] == 2));
  }
  CHECK(var_names.count("datasource"));
  CHECK(var_names.count("device"));
  // Panels: #Panel requires a non-empty type, options, fieldConfig {defaults, overrides},
  // transformations; gridPos h > 0, 0 < w <= 24, 0 <= x < 24, y >= 0; ids unique.
  REQUIRE(d["panels"].is_array());
  REQUIRE(d["panels"].size() >= 5);
  std::set<int64_t> ids;
  std::set<std::string> exprs;
  for (const auto& p : d["panels"]) {
    REQUIRE(p["type"].is_string());
    CHECK_FALSE(p["type"].get<std::string>().empty());
    REQUIRE(is_uint(p["id"]));
    CHECK(ids.insert(p["id"].get<int64_t>()).second);
    CHECK(p["title"].is_string());
    CHECK(p["options"].is_object());
    CHECK(p["fieldConfig"]["defaults"].is_object());
    CHECK(p["fieldConfig"]["overrides"].is_array());
    CHECK(p["transformations"].is_array());
    CHECK(p["transparent"].is_boolean());
    CHECK((p["repeatDirection"] == "h" || p["repeatDirection"] == "v"));
    CHECK(p["datasource"]["type"] == "prometheus");
    const auto& g = p["gridPos"];
    REQUIRE((is_uint(g["h"]) && is_uint(g["w"]) && is_uint(g["x"]) && is_uint(g["y"])));
    CHECK(g["h"].get<int>() > 0);
    CHECK(g["w"].get<int>() > 0);
    CHECK(g["w"].get<int>() <= 24);
    CHECK(g["x"].get<int>() < 24);
    CHECK(g["x"].get<int>() + g["w"].get<int>() <= 24);
    REQUIRE(p["targets"].is_array());
    for (const auto& t : p["targets"]) {
      CHECK(t["refId"].is_string());
      REQUIRE(t["expr"].is_string());
      exprs.insert(t["expr"].get<std::string>());
      CHECK(t["expr"].get<std::string>().find("gedge_cluster=\"lab.one\"") != std::string::npos);
    }
  }
  // The same metrics as `cluster status`: up, CPU, memory, disk.
  auto uses = [&](const char* metric) {
    return std::any_of(exprs.begin(), exprs.end(),
                       [&](const std::string& e) { return e.find(metric) != std::string::npos; });
  };
  CHECK(uses("up{"));
  CHECK(uses("node_cpu_seconds_total"));
  CHECK(uses("node_memory_MemAvailable_bytes"));
  CHECK(uses("node_filesystem_avail_bytes"));
}

TEST_CASE("a fetched kubeconfig is pointed at the server in one pass, even when it is 127.0.0.1") {
  // The server at 127.0.0.1 (behind an SSH tunnel) made the old loop replace it with itself for
  // ever.
  std::string kc = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n";
  CHECK(ansible::point_kubeconfig_at(kc, "127.0.0.1") == kc);
  CHECK(ansible::point_kubeconfig_at(kc, "10.213.0.5") ==
        "clusters:\n- cluster:\n    server: https://10.213.0.5:6443\n  name: default\n");
  CHECK(ansible::point_kubeconfig_at(kc, "fd00::5").find("server: https://[fd00::5]:6443\n") !=
        std::string::npos);
  CHECK(ansible::point_kubeconfig_at("a https://127.0.0.1:1 b https://127.0.0.1:2", "h") ==
        "a https://h:1 b https://h:2");
  CHECK(ansible::point_kubeconfig_at("no server here", "h") == "no server here");
}

TEST_CASE(
    "registry trust: 401 over TLS is TLS working; a certificate failure or plain HTTP is exit 6 "
    "unless allowed") {
  // Was: any failed HTTPS probe (an unknown CA, the 401 of every authenticated registry) made the
  // registry plain HTTP, insecure on every device.
  test::ReadyProcess tls("tests/registry_double/registry_double.py --dir {dir} --tls --status 401");
  test::ReadyProcess plain("tests/registry_double/registry_double.py --dir {dir} --status 200");
  std::string tls_reg = fmt::format("127.0.0.1:{}", tls.info["port"].get<int>());
  std::string plain_reg = fmt::format("127.0.0.1:{}", plain.info["port"].get<int>());
  std::string ca = tls.info["ca"].get<std::string>();
  struct Warnings : Reporter {
    std::vector<std::string> seen;
    void warn(std::string_view m) override { seen.emplace_back(m); }
  } rep;

  auto with_ca = cluster::registry_trust(tls_reg, ca, false, 5, rep);
  REQUIRE_MESSAGE(with_ca, (with_ca ? "" : with_ca.error().message));
  CHECK_FALSE(with_ca->insecure);
  CHECK(with_ca->ca_pem.find("BEGIN CERTIFICATE") != std::string::npos);

  auto unknown_ca = cluster::registry_trust(tls_reg, "", false, 5, rep);
  REQUIRE_FALSE(unknown_ca);
  CHECK(exit_code_for(unknown_ca.error().code) == 6);
  CHECK(unknown_ca.error().hint.find("--registry-ca") != std::string::npos);

  auto plain_refused = cluster::registry_trust(plain_reg, "", false, 5, rep);
  REQUIRE_FALSE(plain_refused);
  CHECK(exit_code_for(plain_refused.error().code) == 6);
  CHECK(plain_refused.error().message.find("plain HTTP") != std::string::npos);
  CHECK(plain_refused.error().hint.find("--insecure-registry") != std::string::npos);
  CHECK(rep.seen.empty());

  auto plain_allowed = cluster::registry_trust(plain_reg, "", true, 5, rep);
  REQUIRE(plain_allowed);
  CHECK(plain_allowed->insecure);
  REQUIRE(rep.seen.size() == 1);
  CHECK(rep.seen[0].find("plain HTTP") != std::string::npos);

  auto not_pem = cluster::registry_trust(
      tls_reg, std::string(gedge::test::source_dir()) + "/README.md", false, 5, rep);
  REQUIRE_FALSE(not_pem);
  CHECK(not_pem.error().code == ErrorCode::usage);

  // A TLS server asked in plain HTTP answers 400 (docker-registry does): that is a TLS registry
  // whose certificate is unknown here, not plain HTTP (the lab's TLS registry was called "plain").
  test::ReadyProcess tls400("tests/registry_double/registry_double.py --dir {dir} --status 400");
  auto https_only = cluster::registry_trust(
      fmt::format("127.0.0.1:{}", tls400.info["port"].get<int>()), "", false, 5, rep);
  REQUIRE_FALSE(https_only);
  CHECK(exit_code_for(https_only.error().code) == 6);
  CHECK_MESSAGE(https_only.error().message.find("plain HTTP") == std::string::npos,
                https_only.error().message);
  CHECK(https_only.error().hint.find("--registry-ca") != std::string::npos);

  // Not answering from here: TLS stays required on the devices (a warning, not insecure).
  auto away = cluster::registry_trust("127.0.0.1:1", "", false, 2, rep);
  REQUIRE(away);
  CHECK_FALSE(away->insecure);
}

TEST_CASE("complete_build_request: --devices, each --group's devices once, the default profile") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  for (const char* d : {"edge1", "edge2", "edge3"})
    REQUIRE(InventoryRaw::exec(
        inv,
        "INSERT INTO devices(name, host, user, groups, created_at, updated_at) "
        "VALUES (?, '10.213.0.11', 'u', ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        {std::string(d), std::string(d == std::string("edge1") ? "[]" : R"(["cams"])")}));
  cluster::BuildRequest req;
  req.name = "lab";
  REQUIRE(cluster::complete_build_request(inv, req, "edge1,,edge2", {"cams"}));
  CHECK(req.devices == std::vector<std::string>{"edge1", "edge2", "edge3"});
  CHECK(req.profile == "containers");  // a new cluster without --profile
  auto bad = cluster::complete_build_request(inv, req, "", {"ghost"});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::not_found);
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO clusters (name, kind, profile, created_at, updated_at) VALUES "
      "('k', 'devices', 'k3s', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"));
  cluster::BuildRequest known;
  known.name = "k";
  REQUIRE(cluster::complete_build_request(inv, known, "", {}));
  CHECK(known.profile.empty());  // an existing cluster keeps its own (run_build reads it)
  cluster::BuildRequest resume;
  resume.name = "new";
  resume.resume = true;
  REQUIRE(cluster::complete_build_request(inv, resume, "", {}));
  CHECK(resume.profile.empty());
}

TEST_CASE("cluster summaries and the Prometheus status rows") {
  using nlohmann::json;
  CHECK(cluster::build_summary({{"cluster", "lab"}, {"dry_run", true}, {"changed", 4}}) ==
        "dry run: 4 step(s) would change; nothing was changed");
  CHECK(cluster::build_summary({{"cluster", "lab"}, {"message", "nothing to resume"}}) ==
        "nothing to resume");
  CHECK(cluster::build_summary({{"cluster", "lab"}, {"changed", 0}, {"failed", json::array()}}) ==
        "cluster lab is up to date; nothing changed");
  CHECK(cluster::build_summary(
            {{"cluster", "lab"}, {"changed", 3}, {"failed", {"edge2"}}, {"state", "partial"}}) ==
        "cluster lab: 3 step(s) changed, state partial");
  CHECK(cluster::show_summary(
            {{"name", "lab"}, {"kind", "devices"}, {"profile", nullptr}, {"state", "ready"}}) ==
        "cluster lab (devices ), state ready");
  CHECK(cluster::kubernetes_status_summary({{"deployments", {1, 2}},
                                            {"persistent_volumes", json::array()},
                                            {"storage_classes", {1}}}) ==
        "2 deployment(s), 0 PV(s), 1 storage class(es); -o json for pods by phase");
  json st = {{"members",
              {{{"device", "edge1"}, {"metrics", {{"cpu_busy_percent_1h", {0, 50, nullptr, 100}}}}},
               {{"device", "edge2"}, {"metrics", nullptr}}}},
             {"prometheus",
              {{"url", "http://10.213.0.11:9090"},
               {"alerts", {{{"state", "firing"}}, {{"state", "pending"}}}}}}};
  auto rows = cluster::prometheus_status_rows(st, true);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["cpu_1h"].is_string());
  CHECK(rows[0]["cpu_1h"].get<std::string>().size() > 0);
  CHECK_FALSE(rows[1].contains("cpu_1h"));
  CHECK_FALSE(cluster::prometheus_status_rows(st, false)[0].contains("cpu_1h"));
  CHECK(cluster::prometheus_status_summary(st) ==
        "from Prometheus at http://10.213.0.11:9090; 1 alert(s) firing (-o json lists them)");
}

TEST_CASE("remove_device: the row goes, and each cluster that listed it resyncs, failing or not") {
  MonitoringFixture f;
  test::TempDir home;
  Paths paths;
  paths.home = home.path;
  paths.known_hosts = home.path / "known_hosts";
  struct Warnings : Reporter {
    std::vector<std::string> seen;
    void warn(std::string_view m) override { seen.emplace_back(m); }
  } rep;
  // A member: refused without --force, and nothing is removed.
  auto refused = cluster::remove_device(f.inv, paths, "edge2", false, 1, rep);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::conflict);
  CHECK(device_show(f.inv, "edge2"));
  // The cluster has no Prometheus server: no prometheus key.
  auto plain = cluster::remove_device(f.inv, paths, "edge2", true, 1, rep);
  REQUIRE_MESSAGE(plain, (plain ? "" : plain.error().message));
  CHECK((*plain)["removed"] == "edge2");
  CHECK((*plain)["device"]["host"] == "fd00::2");
  CHECK_FALSE(plain->contains("prometheus"));
  CHECK_FALSE(device_show(f.inv, "edge2"));
  // Its server is a device gedge cannot reach: the removal stands, the failed resync is reported
  // under the cluster's name and warned.
  REQUIRE(
      InventoryRaw::exec(f.inv, "UPDATE clusters SET prometheus = 'nowhere' WHERE name = 'mon'"));
  auto synced = cluster::remove_device(f.inv, paths, "edge1", true, 1, rep);
  REQUIRE_MESSAGE(synced, (synced ? "" : synced.error().message));
  CHECK_FALSE(device_show(f.inv, "edge1"));
  const auto& p = (*synced)["prometheus"]["mon"];
  CHECK(p["host"] == "nowhere");
  CHECK(p["synced"] == false);
  CHECK(p["error"].get<std::string>().find("nowhere") != std::string::npos);
  REQUIRE(rep.seen.size() == 1);
  CHECK(rep.seen[0].find("cluster mon on nowhere") != std::string::npos);
  auto unknown = cluster::remove_device(f.inv, paths, "edge1", true, 1, rep);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == ErrorCode::not_found);
}
