// topo: cpu lists, topology loading (including hostile input), the planner on real machines'
// topologies (expected answers computed by hwloc-calc, not by gedge), binding on this machine,
// the container pin against a fake runner, and statistics.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "gedge/topo.hpp"
#include "test_helpers.hpp"

using namespace gedge;
using namespace gedge::topo;

namespace {

std::string data_dir() {
  return std::string(gedge::test::source_dir()) + "/tests/data/topologies";
}
std::string xml(const char* name) {
  return data_dir() + "/" + name;
}

// Runs hwloc-calc with the given arguments (each quoted) and returns its trimmed stdout.
std::string hwloc_calc(const std::vector<std::string>& args) {
  std::string cmd = "hwloc-calc";
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) out += buf;
  ::pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

IndexSet set_of(const std::string& list) {
  auto r = parse_list(list);
  REQUIRE_MESSAGE(r.has_value(), "not a list: " << list);
  return *r;
}

std::vector<unsigned> vec_of(const std::string& comma) {
  std::vector<unsigned> v;
  std::stringstream ss(comma);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(static_cast<unsigned>(std::stoul(x)));
  return v;
}

// The PUs (OS indexes) of the given logical cores, by hwloc-calc.
IndexSet pus_of_cores(const std::string& input, const std::vector<unsigned>& cores,
                      bool no_smt = false) {
  std::string loc;
  for (unsigned c : cores) loc += (loc.empty() ? "core:" : ",core:") + std::to_string(c);
  std::vector<std::string> args{"--input", input};
  if (no_smt) args.push_back("--no-smt");
  // Several locations are given as separate arguments.
  for (unsigned c : cores) args.push_back("core:" + std::to_string(c));
  args.insert(args.end(), {"-I", "pu", "--po"});
  return set_of(hwloc_calc(args));
}

Topology load(const std::string& arg) {
  auto t = Topology::load(TopologySource::from_arg(arg));
  REQUIRE_MESSAGE(t.has_value(), arg << ": " << (t ? "" : t.error().message));
  return std::move(*t);
}

Plan must_plan(const Topology& t, const PlanRequest& r) {
  auto p = plan(t, r);
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message + " / " + p.error().hint));
  return *p;
}

}  // namespace

TEST_CASE("cpu lists parse and format") {
  CHECK(format_list(set_of("0-3,8,10-11")) == "0-3,8,10-11");
  CHECK(format_list(set_of("8,2,3,4,5")) == "2-5,8");
  CHECK(format_list({}) == "");
  CHECK(set_of("").empty());
  CHECK(set_of("7") == IndexSet{7});
  for (const char* bad :
       {"1-", "-1", "a", "3-1", ",", "1,,2", "1 2", "99999999", "0x3", "1-2-3", "2,"}) {
    auto r = parse_list(bad);
    CHECK_MESSAGE(!r.has_value(), bad);
    if (!r) CHECK(r.error().code == ErrorCode::usage);
  }
}

TEST_CASE("synthetic topologies load and count like hwloc-calc") {
  const std::string syn = "pack:2 numa:2 core:8 pu:2";
  auto t = load(syn);
  CHECK_FALSE(t.is_this_system());
  auto s = t.summary();
  CHECK(s["counts"]["packages"] ==
        std::stoi(hwloc_calc({"--input", syn, "--number-of", "package", "all"})));
  CHECK(s["counts"]["numa_nodes"] ==
        std::stoi(hwloc_calc({"--input", syn, "--number-of", "numa", "all"})));
  CHECK(s["counts"]["cores"] ==
        std::stoi(hwloc_calc({"--input", syn, "--number-of", "core", "all"})));
  CHECK(s["counts"]["pus"] == std::stoi(hwloc_calc({"--input", syn, "--number-of", "pu", "all"})));
  CHECK(s["smt"] == true);
}

TEST_CASE("hostile or malformed topologies are refused cleanly") {
  gedge::test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    auto p = (dir.path / name).string();
    std::ofstream(p) << text;
    return p;
  };
  SUBCASE("missing file") {
    auto r = Topology::load(TopologySource::from_arg((dir.path / "none.xml").string()));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::not_found);
  }
  SUBCASE("not XML, truncated, entities, absurd indexes, empty machine") {
    std::string real;
    {
      std::ifstream f(xml("16em64t-4s2c2t.xml"));
      std::stringstream ss;
      ss << f.rdbuf();
      real = ss.str();
    }
    std::vector<std::string> files{
        write("junk.xml", "this is not xml"),
        write("empty.xml", ""),
        write("trunc.xml", real.substr(0, real.size() / 2)),
        write("entity.xml",
              "<?xml version=\"1.0\"?><!DOCTYPE t [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
              "<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\"/></topology>"),
        write("huge.xml",
              "<?xml version=\"1.0\"?><topology version=\"2.0\"><object type=\"Machine\" "
              "os_index=\"0\" "
              "cpuset=\"0x1\" complete_cpuset=\"0x1\" allowed_cpuset=\"0x1\" nodeset=\"0x1\" "
              "complete_nodeset=\"0x1\" allowed_nodeset=\"0x1\"><object type=\"PU\" "
              "os_index=\"4000000000\" "
              "cpuset=\"0x1\"/></object></topology>"),
        write("nopu.xml", "<?xml version=\"1.0\"?><topology version=\"2.0\"></topology>"),
    };
    for (const auto& f : files) {
      auto r = Topology::load(TopologySource::from_arg(f));
      CHECK_MESSAGE(!r.has_value(), f);
      if (!r) CHECK_MESSAGE(r.error().code == ErrorCode::usage, f << ": " << r.error().message);
    }
  }
  SUBCASE("synthetic: invalid and too large") {
    for (const char* s :
         {"pack:two", "pu:0", "core:100000 pu:100000", "pack:2; rm -rf /", "foo:3"}) {
      auto r = Topology::load(TopologySource{TopologySource::Kind::synthetic, s, ""});
      CHECK_MESSAGE(!r.has_value(), s);
      if (!r) CHECK(r.error().code == ErrorCode::usage);
    }
  }
}

TEST_CASE(
    "topology XML that would make hwloc allocate without bound is refused before hwloc sees it") {
  // Issue 16 item 13: a 570-byte document with a PU at os_index 4000000000 cost 1 GB and more than
  // a second (9 s on a busy machine) in hwloc before the index check refused it.
  gedge::test::TempDir dir;
  const std::string head =
      "<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n<object type=\"Machine\" "
      "os_index=\"0\" "
      "cpuset=\"0x3\" complete_cpuset=\"0x3\" allowed_cpuset=\"0x3\" nodeset=\"0x1\" "
      "complete_nodeset=\"0x1\" "
      "allowed_nodeset=\"0x1\" gp_index=\"1\">\n<object type=\"NUMANode\" os_index=\"0\" "
      "cpuset=\"0x3\" "
      "complete_cpuset=\"0x3\" nodeset=\"0x1\" complete_nodeset=\"0x1\" gp_index=\"2\"/>\n"
      "<object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\" nodeset=\"0x1\" "
      "complete_nodeset=\"0x1\" gp_index=\"3\"/>\n";
  const std::string tail = "</object>\n</topology>\n";
  struct Case {
    std::string name, body, says;
  };
  std::string deep, deep_end;
  for (int i = 0; i < 80; ++i) {
    deep += "<object type=\"Group\" cpuset=\"0x1\" complete_cpuset=\"0x1\">";
    deep_end += "</object>";
  }
  std::vector<Case> cases{
      {"huge PU index",
       "<object type=\"PU\" os_index=\"4000000000\" cpuset=\"0x2\" complete_cpuset=\"0x2\"/>\n",
       "os_index=\"4000000000\" is out of range"},
      {"huge NUMA index", "<object type=\"numa\" os_index='2147483000' cpuset=\"0x2\"/>\n",
       "os_index"},
      {"negative index", "<object os_index=\"-1\" type=\"PU\" cpuset=\"0x2\"/>\n",
       "os_index=\"-1\""},
      {"character reference", "<object type=\"PU\" os_index=\"0\" cpuset=\"0x1&#44;&#44;\"/>\n",
       "character references"},
      {"distance matrix larger than the file",
       "<distances2 type=\"PU\" nbobjs=\"60000\" kind=\"5\" indexing=\"os\"><indexes "
       "length=\"1\">0</indexes>"
       "<u64values length=\"1\">10</u64values></distances2>\n",
       "nbobjs=\"60000\""},
      {"deep nesting", deep + deep_end + "\n", "nested more than 64 deep"},
      {"long cpuset",
       "<object type=\"PU\" os_index=\"1\" cpuset=\"0x2" + std::string(40000, ',') + "\"/>\n",
       "indexes of 1048576 or more"},
  };
  for (const auto& c : cases) {
    auto p = (dir.path / "t.xml").string();
    std::ofstream(p, std::ios::trunc) << head << c.body << tail;
    auto t0 = std::chrono::steady_clock::now();
    auto r = Topology::load(TopologySource::from_arg(p));
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CAPTURE(c.name);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == ErrorCode::usage);
    CHECK_MESSAGE(r.error().message.find(c.says) != std::string::npos, r.error().message);
    CHECK_MESSAGE(r.error().message.find(p + ":6:") != std::string::npos,
                  r.error().message);  // file:line
    CHECK(s < 0.2);
  }
  // Attributes in another order, and the real files, still load.
  auto ok = (dir.path / "ok.xml").string();
  std::ofstream(ok, std::ios::trunc) << head
                                     << "<object gp_index=\"9\" os_index=\"1\" type=\"PU\" "
                                        "cpuset=\"0x2\" complete_cpuset=\"0x2\"/>\n"
                                     << tail;
  CHECK(Topology::load(TopologySource::from_arg(ok)).has_value());
  for (const char* f : {"96em64t-4n4d3ca2co-pci.xml", "power8gpudistances.xml",
                        "64intel64-fakeKNL-SNC4-hybrid.xml", "fakecpukinds.xml"})
    CHECK_MESSAGE(Topology::load(TopologySource::from_arg(xml(f))).has_value(), f);
}

TEST_CASE("seeded mutations of real topology XML never crash the loader") {
  // A cheap in-tree fuzzer (tests/fuzz/fuzz_topology.cpp is the libFuzzer version).
  std::vector<std::string> seeds;
  for (const char* n :
       {"16em64t-4s2c2t.xml", "fakecpukinds.xml", "32em64t-2n8c2t-pci-normalio.xml"}) {
    std::ifstream f(xml(n));
    std::stringstream ss;
    ss << f.rdbuf();
    seeds.push_back(ss.str());
  }
  std::mt19937 rng(20261122);
  const std::vector<std::string> tokens{"\"",
                                        "<",
                                        ">",
                                        "/>",
                                        "</object>",
                                        "<object type=\"PU\" os_index=\"9999999\"/>",
                                        "0xffffffff,0xffffffff",
                                        "-1",
                                        "4294967295",
                                        "&amp;",
                                        "&#0;",
                                        "type=\"NUMANode\"",
                                        "cpuset=\"\"",
                                        "<info name=\"a\" value=\"b\"/>",
                                        "\xff\xfe",
                                        "<!--",
                                        "<![CDATA["};
  int loaded = 0, refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          s.erase(pos, 1 + rng() % 64);
          break;
        case 2:
          s.insert(pos, tokens[rng() % tokens.size()]);
          break;
        case 3:
          s.resize(pos);
          break;
      }
    }
    if (std::getenv("GEDGE_FUZZ_DUMP"))
      std::ofstream(std::getenv("GEDGE_FUZZ_DUMP"), std::ios::binary) << s;
    auto r = Topology::load(TopologySource{TopologySource::Kind::xml_buffer, s, "fuzz"});
    if (r) {
      ++loaded;
      (void)r->describe();  // whatever loads must also describe without crashing
      PlanRequest req;
      req.cores = 1;
      (void)plan(*r, req);
    } else {
      ++refused;
      CHECK(r.error().code == ErrorCode::usage);
    }
  }
  CHECK(loaded + refused == 400);
  CHECK(refused > 0);
}

TEST_CASE("describe lists I/O devices with the cpuset hwloc-calc gives them") {
  const auto f = xml("32em64t-2n8c2t-pci-normalio.xml");
  auto t = load(f);
  auto j = t.describe();
  bool found = false;
  for (const auto& d : j["io_devices"]) {
    if (d["name"] == "cuda0") {
      found = true;
      CHECK(set_of(d["local_cpuset"]) ==
            set_of(hwloc_calc({"--input", f, "os=cuda0", "-I", "pu", "--po"})));
      CHECK(set_of(d["local_numa_nodes"]) ==
            set_of(hwloc_calc({"--input", f, "os=cuda0", "-I", "numa", "--po"})));
      CHECK(d["kind"] == "coproc");
      CHECK(d["alias"].get<std::string>().rfind("gpu", 0) == 0);
    }
  }
  CHECK(found);
  bool nic = false;
  for (const auto& d : j["io_devices"]) nic = nic || (d["kind"] == "nic" && d["name"] == "eth0");
  CHECK(nic);
  CHECK(j["pus"].size() == static_cast<std::size_t>(
                               std::stoi(hwloc_calc({"--input", f, "--number-of", "pu", "all"}))));
  CHECK(j["numa_nodes"].size() == 2);
  for (const auto& n : j["numa_nodes"]) CHECK(n["memory_bytes"].get<uint64_t>() > 0);
  CHECK_FALSE(j["caches"].empty());
}

TEST_CASE("cpu kinds and memory-side caches are shown") {
  auto t = load(xml("fakecpukinds.xml"));
  std::ifstream f(xml("fakecpukinds.xml"));
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  std::size_t kinds = 0;
  for (std::size_t pos = 0; (pos = text.find("<cpukind", pos)) != std::string::npos; ++pos) ++kinds;
  CHECK(t.describe()["cpu_kinds"].size() == kinds);

  auto knl = load(xml("64intel64-fakeKNL-SNC4-hybrid.xml"));
  bool memside = false;
  auto kd = knl.describe();
  for (const auto& c : kd["caches"]) memside = memside || c.value("memory_side", false);
  CHECK(memside);
}

TEST_CASE("plan near a GPU picks cores local to it") {
  SUBCASE("32em64t, cuda0 on NUMA node 1") {
    const auto f = xml("32em64t-2n8c2t-pci-normalio.xml");
    auto t = load(f);
    PlanRequest r;
    r.cores = 4;
    r.near = "cuda0";
    auto p = must_plan(t, r);
    auto local_cores = vec_of(hwloc_calc({"--input", f, "os=cuda0", "-I", "core"}));
    REQUIRE(local_cores.size() >= 4);
    CHECK(p.cpus == pus_of_cores(f, {local_cores.begin(), local_cores.begin() + 4}));
    CHECK(p.memory_nodes == set_of(hwloc_calc({"--input", f, "os=cuda0", "-I", "numa", "--po"})));
    // gpu0 names the same PCI device as cuda0; --no-smt keeps one PU per core.
    r.near = "gpu0";
    r.no_smt = true;
    auto q = must_plan(t, r);
    CHECK(q.cpus == pus_of_cores(f, {local_cores.begin(), local_cores.begin() + 4}, true));
    CHECK(q.cpus.size() == 4);
    // the NIC and the PCI bus forms
    r = PlanRequest{};
    r.cores = 2;
    r.near = "nic:eth0";
    auto n = must_plan(t, r);
    auto nic_cores = vec_of(hwloc_calc({"--input", f, "os=eth0", "-I", "core"}));
    CHECK(n.cpus == pus_of_cores(f, {nic_cores.begin(), nic_cores.begin() + 2}));
    r.near = "pci:84:00.0";
    auto b = must_plan(t, r);
    auto pci_cores = vec_of(hwloc_calc({"--input", f, "pci=0000:84:00.0", "-I", "core"}));
    CHECK(b.cpus == pus_of_cores(f, {pci_cores.begin(), pci_cores.begin() + 2}));
  }
  SUBCASE("power8, four GPUs on two nodes") {
    const auto f = xml("power8gpudistances.xml");
    auto t = load(f);
    for (const char* dev : {"cuda0", "cuda3", "nvml2"}) {
      PlanRequest r;
      r.cores = 2;
      r.near = dev;
      auto p = must_plan(t, r);
      auto cores = vec_of(hwloc_calc({"--input", f, std::string("os=") + dev, "-I", "core"}));
      CHECK_MESSAGE(p.cpus == pus_of_cores(f, {cores.begin(), cores.begin() + 2}), dev);
      CHECK(p.memory_nodes ==
            set_of(hwloc_calc({"--input", f, std::string("os=") + dev, "-I", "numa", "--po"})));
    }
  }
}

TEST_CASE("plan policies, NUMA, SMT, exclusions and pins") {
  SUBCASE("scatter over four NUMA nodes") {
    const auto f = xml("96em64t-4n4d3ca2co-pci.xml");
    auto t = load(f);
    PlanRequest r;
    r.cores = 4;
    r.policy = Policy::scatter;
    auto p = must_plan(t, r);
    std::vector<unsigned> expect;
    for (int k = 0; k < 4; ++k)
      expect.push_back(
          vec_of(hwloc_calc({"--input", f, "numa:" + std::to_string(k), "-I", "core"})).front());
    CHECK(p.cpus == pus_of_cores(f, expect));
    CHECK(p.memory_nodes == set_of(hwloc_calc({"--input", f, "all", "-I", "numa", "--po"})));
    // compact keeps them on one node
    r.policy = Policy::compact;
    auto c = must_plan(t, r);
    CHECK(c.memory_nodes.size() == 1);
  }
  SUBCASE("synthetic: compact fills one NUMA node, --numa picks another") {
    const std::string syn = "pack:2 numa:2 core:8 pu:2";
    auto t = load(syn);
    PlanRequest r;
    r.cores = 8;
    auto p = must_plan(t, r);
    auto n0 = vec_of(hwloc_calc({"--input", syn, "numa:0", "-I", "core"}));
    CHECK(p.cpus == pus_of_cores(syn, n0));
    CHECK(p.memory_nodes == IndexSet{0});
    r.numa = 3;
    auto q = must_plan(t, r);
    auto n3 = vec_of(hwloc_calc({"--input", syn, "--pi", "numa:3", "-I", "core"}));
    CHECK(q.cpus == pus_of_cores(syn, n3));
    CHECK(q.memory_nodes == IndexSet{3});
  }
  SUBCASE("SMT: whole cores with --no-smt, siblings otherwise") {
    const auto f = xml("16em64t-4s2c2t.xml");
    auto t = load(f);
    PlanRequest r;
    r.cores = 2;
    auto p = must_plan(t, r);
    CHECK(p.cpus == pus_of_cores(f, {0, 1}));
    CHECK(p.cpus.size() == 4);
    r.no_smt = true;
    r.cores = 4;
    auto q = must_plan(t, r);
    CHECK(q.cpus == pus_of_cores(f, {0, 1, 2, 3}, true));
    // a busy sibling makes a core unusable under --no-smt
    auto core0 = pus_of_cores(f, {0});
    r.exclude = {*core0.rbegin()};
    auto e = must_plan(t, r);
    CHECK(e.cpus == pus_of_cores(f, {1, 2, 3, 4}, true));
  }
  SUBCASE("pins on the device are avoided") {
    const std::string syn = "numa:1 core:4 pu:1";
    auto t = load(syn);
    PlanRequest r;
    r.cores = 2;
    r.pinned = {{"other", pus_of_cores(syn, {0, 1})}};
    auto p = must_plan(t, r);
    CHECK(p.cpus == pus_of_cores(syn, {2, 3}));
    r.cores = 3;
    auto bad = plan(t, r);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().code == ErrorCode::failure);
    CHECK(bad.error().message.find("2 of 4") != std::string::npos);
  }
  SUBCASE("KNL SNC4: --numa names the memory node") {
    const auto f = xml("64intel64-fakeKNL-SNC4-hybrid.xml");
    auto t = load(f);
    PlanRequest r;
    r.cores = 2;
    r.numa = 1;
    auto p = must_plan(t, r);
    auto cores = vec_of(hwloc_calc({"--input", f, "--pi", "numa:1", "-I", "core"}));
    CHECK(p.cpus == pus_of_cores(f, {cores[0], cores[1]}));
    CHECK(p.memory_nodes == IndexSet{1});
    r.numa.reset();
    auto q = must_plan(t, r);  // without --numa: every node local to those cores (DDR + MCDRAM)
    CHECK(q.memory_nodes ==
          set_of(hwloc_calc({"--input", f, "core:0", "core:1", "-I", "numa", "--po"})));
  }
}

TEST_CASE("impossible and malformed plan requests") {
  const auto f = xml("32em64t-2n8c2t-pci-normalio.xml");
  auto t = load(f);
  PlanRequest r;
  r.cores = 4;
  r.near = "gpu7";
  auto a = plan(t, r);
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error().code == ErrorCode::not_found);
  CHECK(a.error().hint.find("cuda0") != std::string::npos);
  r.near = "cuda0";
  r.cores = 9;  // cuda0's node has 8 cores
  auto b = plan(t, r);
  REQUIRE_FALSE(b.has_value());
  CHECK(b.error().code == ErrorCode::failure);
  CHECK(b.error().message.find("8 of 8") != std::string::npos);
  r = PlanRequest{};
  r.cpuset = "1-3,400";
  auto c = plan(t, r);
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().code == ErrorCode::usage);
  r.cpuset = "1-";
  CHECK(plan(t, r).error().code == ErrorCode::usage);
  r.cpuset = "2-5,8";
  auto d = must_plan(t, r);
  CHECK(format_list(d.cpus) == "2-5,8");
  r = PlanRequest{};
  r.cores = 1;
  r.numa = 7;
  CHECK(plan(t, r).error().code == ErrorCode::not_found);
}

TEST_CASE("backends render the plan") {
  auto t = load("numa:2 core:2 pu:1");
  PlanRequest r;
  r.cores = 2;
  r.numa = 1;
  auto p = must_plan(t, r);
  CHECK(render_podman(p) == "--cpuset-cpus=2-3 --cpuset-mems=1\n");
  CHECK(render_systemd(p).find("AllowedCPUs=2-3\nAllowedMemoryNodes=1\n") != std::string::npos);
  auto k = render_k8s(p, "2Gi");
  CHECK(k.find("cpu: \"2\"") != std::string::npos);
  CHECK(k.find("memory: \"2Gi\"") != std::string::npos);
  CHECK(k.find("cpuManagerPolicy: static") != std::string::npos);
}

TEST_CASE("binding on this machine is read back from /proc") {
  auto t = Topology::load({});
  REQUIRE(t.has_value());
  CHECK(t->is_this_system());
  auto self = read_back(::getpid());
  REQUIRE(self.has_value());
  CHECK_FALSE(self->cpus.empty());
  CHECK(self->threads.size() >= 1);
  IndexSet allowed = t->allowed_pus();
  REQUIRE_FALSE(allowed.empty());
  unsigned last = *allowed.rbegin();

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::thread th([] { ::pause(); });
    ::pause();
    ::_exit(0);
  }
  ::usleep(100000);  // let the child start its thread
  PlanRequest r;
  r.cpuset = std::to_string(last);
  auto p = plan(*t, r);
  REQUIRE(p.has_value());
  auto a = bind_pid(*t, *p, child);
  REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().message));
  CHECK(a->cpus == IndexSet{last});
  CHECK(a->threads.size() == 2);
  for (const auto& [tid, cpus] : a->threads) CHECK(cpus == IndexSet{last});
  // What /proc says, read independently of gedge.
  std::ifstream st("/proc/" + std::to_string(child) + "/status");
  std::string line, got;
  while (std::getline(st, line))
    if (line.rfind("Cpus_allowed_list:", 0) == 0)
      got = line.substr(line.find_first_not_of(" \t", 18));
  CHECK(got == std::to_string(last));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto gone = bind_pid(*t, *p, child);
  REQUIRE_FALSE(gone.has_value());
  CHECK(gone.error().code == ErrorCode::not_found);

  // verify_applied spots a difference
  Applied fake;
  fake.cpus = {0, 1, 2};
  CHECK(verify_applied(*p, fake, false).error().code == ErrorCode::failure);
  // binding is refused with a foreign topology
  auto syn = load("core:4 pu:1");
  CHECK(bind_pid(syn, *p, ::getpid()).error().code == ErrorCode::usage);
}

TEST_CASE("container pin: argv only, read back, mismatch fails") {
  auto t = load("numa:2 core:2 pu:1");
  PlanRequest r;
  r.cpuset = "2-3";
  r.numa = 1;
  auto p = must_plan(t, r);
  std::vector<std::vector<std::string>> calls;
  std::string applied_cpus = "2-3";
  RemoteRun run = [&](const std::vector<std::string>& argv) -> Result<RemoteOutput> {
    calls.push_back(argv);
    std::string verb = argv.size() > 3 ? argv[3] : "";
    if (verb == "update") return RemoteOutput{0, "web\n", ""};
    if (verb == "inspect") return RemoteOutput{0, applied_cpus + "|1|4242\n", ""};
    if (argv[0] == "cat")
      return RemoteOutput{
          0, "Name:\tx\nCpus_allowed_list:\t" + applied_cpus + "\nMems_allowed_list:\t1\n", ""};
    return RemoteOutput{1, "", "unexpected"};
  };
  auto ok = pin_container(p, "web", run);
  REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.error().message));
  CHECK((*ok)["applied"]["cpus_allowed_list"] == "2-3");
  REQUIRE(calls.size() == 3);
  CHECK(calls[0] == std::vector<std::string>{"sudo", "-n", "podman", "update", "--cpuset-cpus",
                                             "2-3", "--cpuset-mems", "1", "web"});
  CHECK(calls[2] == std::vector<std::string>{"cat", "/proc/4242/status"});
  applied_cpus = "0-3";
  auto bad = pin_container(p, "web", run);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == ErrorCode::failure);
  CHECK(pin_container(p, "web; reboot", run).error().code == ErrorCode::usage);
  // podman 4.3 leaves inspect empty after update: the kernel's view decides
  RemoteRun stale = [&](const std::vector<std::string>& argv) -> Result<RemoteOutput> {
    if (argv.size() > 3 && argv[3] == "inspect") return RemoteOutput{0, "||4242\n", ""};
    return run(argv);
  };
  applied_cpus = "2-3";
  auto st = pin_container(p, "web", stale);
  REQUIRE(st.has_value());
  CHECK((*st)["applied"]["inspect_stale"] == true);
  applied_cpus = "0";
  CHECK_FALSE(pin_container(p, "web", stale).has_value());
  RemoteRun missing = [](const std::vector<std::string>&) -> Result<RemoteOutput> {
    return RemoteOutput{125, "", "Error: no such container nope"};
  };
  CHECK(pin_container(p, "nope", missing).error().code == ErrorCode::not_found);
}

TEST_CASE("statistics") {
  CHECK(median({3, 1, 2}) == 2);
  CHECK(median({4, 1, 2, 3}) == 2.5);
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  CHECK(percentile(v, 95) == 95);
  CHECK(percentile(v, 100) == 100);
  CHECK(percentile({5}, 95) == 5);
}

TEST_CASE("bench runs both sides and reports a speedup") {
  auto t = Topology::load({});
  REQUIRE(t.has_value());
  PlanRequest r;
  r.cores = 1;
  auto p = plan(*t, r);
  REQUIRE(p.has_value());
  BenchRequest b{{"true"}, 3, 0, t->allowed_pus(), *p, false};
  auto res = bench(b, null_reporter());
  REQUIRE_MESSAGE(res.has_value(), (res ? "" : res.error().message));
  CHECK((*res)["unpinned"]["samples_s"].size() == 3);
  CHECK((*res)["pinned"]["samples_s"].size() == 3);
  CHECK((*res)["speedup"].get<double>() > 0);
  BenchRequest f{{"false"}, 2, 0, t->allowed_pus(), *p, false};
  CHECK(bench(f, null_reporter()).error().code == ErrorCode::failure);
  BenchRequest m{{"/nonexistent/cmd"}, 2, 0, t->allowed_pus(), *p, false};
  CHECK(bench(m, null_reporter()).error().code == ErrorCode::not_found);
}

TEST_CASE("tune's flags become one plan request; bad combinations are usage errors") {
  PlanFlags f;
  auto usage = [](const PlanFlags& x) {
    auto r = plan_request(x);
    return !r && r.error().code == ErrorCode::usage;
  };
  CHECK(usage(f));  // neither --cores nor --cpuset
  f.cores = 2;
  f.cpuset = "1";
  CHECK(usage(f));  // both
  f.cpuset = "";
  f.exclude = "0,x";
  CHECK(usage(f));
  f.exclude = "0-1";
  f.policy = "spread";
  CHECK(usage(f));
  f.policy = "scatter";
  f.numa = 1;
  f.no_smt = true;
  f.near = "gpu0";
  auto r = plan_request(f);
  REQUIRE(r);
  CHECK(r->cores == 2);
  CHECK_FALSE(r->cpuset.has_value());
  CHECK(r->exclude == IndexSet{0, 1});
  CHECK(r->policy == Policy::scatter);
  CHECK(r->numa == 1u);
  CHECK((r->no_smt && r->near == "gpu0"));
}

TEST_CASE("a device's topology: lstopo's XML, else a flat one from /sys, else an install hint") {
  std::map<std::string, RemoteOutput> answers;
  std::vector<std::string> asked;
  RemoteRun run = [&](const std::vector<std::string>& argv) -> Result<RemoteOutput> {
    std::string key = argv[0] == "cat" ? argv[1] : argv[0];
    asked.push_back(key);
    auto it = answers.find(key);
    return it != answers.end() ? it->second : RemoteOutput{127, "", "not found"};
  };
  Reporter rep;
  answers["lstopo-no-graphics"] = {0, "<topology/>", ""};
  auto x = remote_topology(run, "edge1", rep);
  REQUIRE(x);
  CHECK(x->kind == TopologySource::Kind::xml_buffer);
  CHECK(x->value == "<topology/>");
  CHECK(x->label == "device edge1");

  answers.erase("lstopo-no-graphics");
  answers["/sys/devices/system/cpu/online"] = {0, "0-7\n", ""};
  answers["/sys/devices/system/node/online"] = {0, "0-1\n", ""};
  auto s = remote_topology(run, "edge1", rep);
  REQUIRE(s);
  CHECK(s->kind == TopologySource::Kind::synthetic);
  CHECK(s->value == "numa:2 pu:4");
  CHECK(s->label == "device edge1 (from /sys: numa:2 pu:4)");
  REQUIRE(Topology::load(*s));  // hwloc takes it

  answers["/sys/devices/system/node/online"] = {1, "", "no such file"};  // no NUMA: one node
  CHECK(remote_topology(run, "edge1", rep)->value == "numa:1 pu:8");
  answers["/sys/devices/system/cpu/online"] = {0, "0-2,5\n", ""};  // holes: not flat
  auto e = remote_topology(run, "edge1", rep);
  REQUIRE_FALSE(e);
  CHECK(e.error().code == ErrorCode::failure);
  CHECK(e.error().hint.find("install hwloc") != std::string::npos);
}

TEST_CASE("bench's table and footer come from its result") {
  nlohmann::json r = {{"baseline_cpuset", "0-3"},
                      {"unpinned", {{"median_s", 0.5}, {"p95_s", 0.75}}},
                      {"pinned", {{"median_s", 0.25}, {"p95_s", 0.3}}},
                      {"speedup", 2.0},
                      {"speedup_ci95", {1.5, 2.5}}};
  Plan p;
  p.cpus = {1};
  p.memory_nodes = {0};
  auto rows = bench_rows(r, p);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] ==
        nlohmann::json{
            {"side", "unpinned"}, {"cpuset", "0-3"}, {"median_s", "0.5000"}, {"p95_s", "0.7500"}});
  CHECK(rows[1]["side"] == "pinned");
  CHECK(rows[1]["cpuset"] == p.to_json()["cpuset"]);
  CHECK(bench_footer(r, 20) ==
        "speedup 2.000x (95% CI 1.500-2.500) over 20 interleaved runs per side");
}
