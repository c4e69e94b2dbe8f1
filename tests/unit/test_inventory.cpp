#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>

#include "../../libgedge/src/inventory/raw.hpp"
#include "gedge/inventory.hpp"
#include "gedge/stores.hpp"
#include "test_helpers.hpp"

using namespace gedge;

namespace {
const char* kNow = "2026-01-01T00:00:00Z";

Result<void> add_device(Inventory& inv, const std::string& name) {
  return inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(InventoryRaw::exec(tx,
                                 "INSERT INTO devices(name, host, user, created_at, updated_at) "
                                 "VALUES (?, ?, ?, ?, ?)",
                                 {name, std::string("10.213.0.11"), std::string("gedgetest"),
                                  std::string(kNow), std::string(kNow)}));
    return {};
  });
}
}  // namespace

TEST_CASE("a new inventory is created 0600 with every migration applied and recorded") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  auto inv = Inventory::open(db, true);
  REQUIRE(inv);
  CHECK(inv->schema_version() == Inventory::latest_schema_version());
  auto rows =
      InventoryRaw::query(*inv, "SELECT version FROM schema_migrations ORDER BY version").value();
  REQUIRE(rows.size() == static_cast<size_t>(Inventory::latest_schema_version()));
  CHECK(rows.front()["version"] == 1);
  auto mode = InventoryRaw::query(*inv, "PRAGMA journal_mode").value();
  CHECK(mode[0]["journal_mode"] == "wal");
  struct stat st {};
  REQUIRE(::stat(db.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("opening an existing inventory applies nothing twice") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  REQUIRE(Inventory::open(db, true));
  auto again = Inventory::open(db, false);
  REQUIRE(again);
  CHECK(
      InventoryRaw::query(*again, "SELECT count(*) AS n FROM schema_migrations").value()[0]["n"] ==
      Inventory::latest_schema_version());
}

TEST_CASE("a missing inventory is not_found with a hint to run gedge init") {
  test::TempDir tmp;
  auto r = Inventory::open(tmp.path / "nope.db", false);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::not_found);
  CHECK(r.error().hint.find("gedge init") != std::string::npos);
}

TEST_CASE("an inventory written by a newer gedge is refused, not downgraded") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  {
    auto inv = Inventory::open(db, true).value();
    REQUIRE(InventoryRaw::exec(inv, "PRAGMA user_version=99"));
  }
  auto r = Inventory::open(db, false);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::failure);
  CHECK(r.error().message.find("newer") != std::string::npos);
  // and the database is untouched
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 99);
  sqlite3_finalize(st);
  sqlite3_close(raw);
}

TEST_CASE("parameters are bound, never spliced into SQL") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  std::string evil = "x'); DROP TABLE devices; --";
  REQUIRE(add_device(inv, evil));
  auto rows = InventoryRaw::query(inv, "SELECT name FROM devices WHERE name = ?", {evil}).value();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["name"] == evil);
}

TEST_CASE("a failing write rolls back everything it did") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  auto r = inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(add_device(tx, "a"));  // nested write joins the outer transaction
    return fail(ErrorCode::conflict, "boom");
  });
  REQUIRE_FALSE(r);
  CHECK(InventoryRaw::query(inv, "SELECT * FROM devices").value().empty());
  // a constraint violation is an error, not a crash, and also rolls back
  REQUIRE(add_device(inv, "b"));
  CHECK_FALSE(add_device(inv, "b"));
  CHECK(InventoryRaw::query(inv, "SELECT * FROM devices").value().size() == 1);
}

TEST_CASE("8 processes writing at once lose nothing and never see 'database is locked'") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  REQUIRE(Inventory::open(db, true));
  constexpr int kProcs = 8, kRows = 40;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto inv = Inventory::open(db, false);
      if (!inv) ::_exit(10);
      for (int i = 0; i < kRows; ++i) {
        // read-then-write inside one transaction: the pattern that deadlocks without IMMEDIATE
        auto r = inv->write([&](Inventory& tx) -> Result<void> {
          GEDGE_TRY_ASSIGN(auto n, InventoryRaw::query(tx, "SELECT count(*) AS n FROM devices"));
          (void)n;
          return add_device(tx, "p" + std::to_string(p) + "-" + std::to_string(i));
        });
        if (!r) ::_exit(11);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    ::waitpid(k, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto inv = Inventory::open(db, false).value();
  CHECK(InventoryRaw::query(inv, "SELECT count(*) AS n FROM devices").value()[0]["n"] ==
        kProcs * kRows);
}

TEST_CASE("concurrent first opens all migrate exactly once") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  std::vector<pid_t> kids;
  for (int p = 0; p < 6; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(Inventory::open(db, true) ? 0 : 12);
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    ::waitpid(k, &status, 0);
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto inv = Inventory::open(db, false).value();
  CHECK(InventoryRaw::query(inv, "SELECT count(*) AS n FROM schema_migrations").value()[0]["n"] ==
        Inventory::latest_schema_version());
}

// ---- typed stores -------------------------------------------------------------------------

TEST_CASE(
    "PinStore: put replaces an owner's pin on a device, keeps earlier memory nodes, remove forgets "
    "it") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  PinStore pins(inv);
  REQUIRE(pins.put({"edge1", "web", "2-3", "0"}));
  REQUIRE(pins.put({"edge1", "api", "4", ""}));
  REQUIRE(pins.put({"edge2", "web", "1", ""}));
  auto on1 = pins.on_device("edge1").value();
  REQUIRE(on1.size() == 2);
  CHECK((on1[0].owner == "api" && on1[0].cpuset == "4" && on1[0].mems.empty()));  // by owner
  CHECK((on1[1].owner == "web" && on1[1].cpuset == "2-3" && on1[1].mems == "0"));
  REQUIRE(pins.put({"edge1", "web", "5-6", ""}));  // re-pinned: one row, the new CPUs
  on1 = pins.on_device("edge1").value();
  REQUIRE(on1.size() == 2);
  CHECK((on1[1].cpuset == "5-6" && on1[1].mems == "0"));
  CHECK(pins.remove("edge1", "web").value());
  CHECK_FALSE(pins.remove("edge1", "web").value());
  CHECK(pins.on_device("edge1").value().size() == 1);
  CHECK(pins.on_device("edge2").value().size() == 1);
  CHECK(pins.on_device("nowhere").value().empty());
}

TEST_CASE("PinStore: a write inside a failing transaction is rolled back with it") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  auto r = inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(PinStore(tx).put({"edge1", "web", "1", ""}));
    return fail(ErrorCode::failure, "later step failed");
  });
  REQUIRE_FALSE(r);
  CHECK(PinStore(inv).on_device("edge1").value().empty());
}

TEST_CASE(
    "DeviceStore: a device's stored topology, '' when none, not_found for an unknown device") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  REQUIRE(add_device(inv, "edge1"));
  REQUIRE(add_device(inv, "edge2"));
  REQUIRE(InventoryRaw::exec(
      inv, "UPDATE devices SET topology_xml = '<topology/>', status = 'ok' WHERE name = 'edge1'"));
  DeviceStore devices(inv);
  CHECK(devices.topology_xml("edge1").value() == "<topology/>");
  CHECK(devices.topology_xml("edge2").value().empty());
  auto missing = devices.topology_xml("ghost");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::not_found);
  CHECK(missing.error().message.find("ghost") != std::string::npos);
  auto c = devices.completions().value();
  REQUIRE(c.size() == 2);
  CHECK((c[0].value == "edge1" && c[0].description == "10.213.0.11 ok"));
  CHECK((c[1].value == "edge2" && c[1].description == "10.213.0.11 unknown"));
}

TEST_CASE(
    "ClusterStore, ServiceStore, RuntimeStore, RequestQueue: existence and completion candidates") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  REQUIRE(InventoryRaw::exec(inv,
                             "INSERT INTO clusters (name, kind, created_at, updated_at) VALUES "
                             "('lab', 'devices', ?1, ?1), ('k', 'kubernetes', ?1, ?1)",
                             {std::string(kNow)}));
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO services (name, cluster, spec, created_at, updated_at) VALUES "
      "('web', 'lab', '{}', ?1, ?1), ('web', 'k', '{}', ?1, ?1), ('api', 'k', '{}', ?1, ?1)",
      {std::string(kNow)}));
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO runtimes (id, name, manifest, files, bytes, created_at) VALUES "
      "('aaaaaaaaaaaaaaaa', 'py', '{}', 1, 1, ?1), ('bbbbbbbbbbbbbbbb', 'py', '{}', 1, 1, ?1)",
      {std::string(kNow)}));
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO sched_requests (state, policy, spec, queue_pos, created_at, updated_at) VALUES "
      "('enqueued', 'pipeline', '', 1, ?1, ?1), ('completed', 'pipeline', '', 2, ?1, ?1), "
      "('scheduling', 'pipeline', '', 3, ?1, ?1)",
      {std::string(kNow)}));
  ClusterStore clusters(inv);
  CHECK(clusters.exists("lab").value());
  CHECK_FALSE(clusters.exists("ghost").value());
  auto cc = clusters.completions().value();
  REQUIRE(cc.size() == 2);
  CHECK((cc[0].value == "k" && cc[0].description == "kubernetes" && cc[1].value == "lab"));
  ServiceStore services(inv);
  CHECK(services.exists("web", "").value());
  CHECK(services.exists("api", "k").value());
  CHECK_FALSE(services.exists("api", "lab").value());
  CHECK_FALSE(services.exists("ghost", "").value());
  CHECK(services.completions().value().size() == 3);
  auto rc = RuntimeStore(inv).completions().value();
  REQUIRE(rc.size() == 3);
  CHECK((rc[0].value == "aaaaaaaaaaaa" && rc[2].value == "py" &&
         rc[2].description == "newest bbbbbbbbbbbb"));
  auto qc = RequestQueue(inv).completions().value();
  REQUIRE(qc.size() == 2);
  CHECK((qc[0].value == "1" && qc[0].description == "enqueued" && qc[1].value == "3"));
}

// Inventory's raw statement API is private: outside the stores nothing can call it.
template <class I>
concept RawQuery = requires(I& i) {
  i.query(std::string_view());
};
template <class I>
concept RawExec = requires(I& i) {
  i.exec(std::string_view());
};
template <class I>
concept RawHandle = requires(I& i) {
  i.raw();
};
static_assert(!RawQuery<Inventory> && !RawExec<Inventory> && !RawHandle<Inventory>);

TEST_CASE("SQL text and raw statements stay in the inventory module (issue 12 item 2)") {
  // Every table is read and written by a store in libgedge/src/inventory/ (gedge/stores.hpp).
  // Outside it no file writes SQL, names the tests' raw API (InventoryRaw, inventory/raw.hpp) or
  // runs statements on a SQLite handle of its own: add a store method instead.
  const std::regex sql(
      R"re("[^"]*\b(SELECT\s+[\w*]|INSERT\s+INTO\b|DELETE\s+FROM\b|UPDATE\s+\w+\s+SET\b))re");
  const std::regex raw(
      R"re(\bInventoryRaw\b|inventory/raw\.hpp|\bsqlite3_(prepare\w*|exec|step|bind_\w+|column_\w+|open\w*|changes|last_insert_rowid)\s*\()re");
  namespace fs = std::filesystem;
  fs::path root(gedge::test::source_dir());
  std::vector<std::string> offenders;
  int scanned = 0;
  for (const char* dir : {"cli", "libgedge/src", "libgedge/include"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      auto ext = e.path().extension();
      if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp")) continue;
      std::string rel = fs::relative(e.path(), root).string();
      if (rel.starts_with("libgedge/src/inventory/")) continue;
      // The class's own header declares the private API and befriends the stores.
      bool own = rel == "libgedge/include/gedge/inventory.hpp";
      ++scanned;
      std::ifstream in(e.path());
      std::string line;
      for (int n = 1; std::getline(in, line); ++n)
        if (std::regex_search(line, sql) || (!own && std::regex_search(line, raw)))
          offenders.push_back(rel + ":" + std::to_string(n));
    }
  }
  CHECK(scanned > 50);
  std::string where;
  for (const auto& o : offenders) where += " " + o;
  CHECK_MESSAGE(offenders.empty(),
                "SQL or a raw statement outside libgedge/src/inventory/:" << where);
}

TEST_CASE("RequestQueue: enqueue at the back or front, claim the next due, start, complete, fail") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  RequestQueue q(inv);
  auto a = q.enqueue(0, "pipeline", "spec-a", "{}", false).value();
  auto b = q.enqueue(0, "pipeline", "spec-b", "{}", false).value();
  auto c = q.enqueue(1, "node", "spec-c", R"({"node":"x"})", true).value();  // high priority
  auto all = q.list().value();
  REQUIRE(all.size() == 3);
  CHECK((all[2].id == c && all[2].priority == 1 && all[2].options == R"({"node":"x"})"));
  CHECK((all[0].state == "enqueued" && all[0].not_before == 0 && !all[0].error &&
         !all[0].claimed_by));
  CHECK(q.next_due({}, 100).value() == std::optional<int64_t>(c));  // the front
  CHECK(q.next_due({c}, 100).value() == std::optional<int64_t>(a));
  CHECK(q.next_due({c, a, b}, 100).value() == std::nullopt);

  REQUIRE(q.claim(c, "w1", R"({"pid":1})").value());
  CHECK_FALSE(q.claim(c, "w2", "{}").value());  // taken already
  auto got = q.get(c).value();
  CHECK((got.state == "dispatched" && got.claimed_by == "w1" && got.runner == R"({"pid":1})" &&
         got.claimed_at));
  CHECK_FALSE(q.start(c, "w2", R"({"pid":1})").value());  // not its lease
  REQUIRE(q.start(c, "w1", R"({"pid":1})").value());
  REQUIRE(q.complete(c, R"({"placements":[]})"));
  got = q.get(c).value();
  CHECK((got.state == "completed" && got.placements == R"({"placements":[]})"));

  REQUIRE(q.claim(a, "w1", "{}").value());
  REQUIRE(q.fail(a, 6, "never fits"));
  got = q.get(a).value();
  CHECK(
      (got.state == "failed" && got.attempts == 6 && got.error == "never fits" && !got.claimed_by));
  CHECK(q.list("failed").value().size() == 1);
  auto missing = q.get(99);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::not_found);
}

TEST_CASE(
    "RequestQueue: a re-queued request is not due before not_before, and goes to the front when "
    "asked") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  RequestQueue q(inv);
  auto a = q.enqueue(0, "pipeline", "a", "{}", false).value();
  auto b = q.enqueue(0, "pipeline", "b", "{}", false).value();
  REQUIRE(q.claim(b, "w", "{}").value());
  CHECK(q.requeue(b, 3, "nothing fits", /*front=*/true, /*not_before=*/1000).value());
  auto got = q.get(b).value();
  CHECK((got.state == "enqueued" && got.attempts == 3 && got.not_before == 1000 &&
         !got.claimed_by && !got.runner));
  CHECK_FALSE(q.requeue(b, 4, "again", true, 0).value());  // not claimed: nothing to re-queue
  CHECK(q.next_due({}, 999).value() == std::optional<int64_t>(a));            // b waits
  CHECK(q.next_due({}, 1000).value() == std::optional<int64_t>(b));           // due: the front
  CHECK(q.next_due({a}, 999).value() == std::nullopt);                        // nothing else due
  CHECK(q.next_due({a}, std::nullopt).value() == std::optional<int64_t>(b));  // retry now
  REQUIRE(q.cancel(a));
  CHECK(q.get(a).value().state == "canceled");
  CHECK(q.next_due({}, std::nullopt).value() == std::optional<int64_t>(b));
}

TEST_CASE(
    "migration 6 gives requests waiting out a backoff their due time, and the queue an index") {
  test::TempDir tmp;
  auto db = tmp.path / "gedge.db";
  {
    // An inventory as gedge with 5 migrations left it, holding re-queued requests.
    auto inv = Inventory::open(db, true).value();
    REQUIRE(InventoryRaw::exec(inv, "DROP INDEX sched_requests_queue"));
    REQUIRE(InventoryRaw::exec(inv, "DROP INDEX sched_requests_pos"));
    REQUIRE(InventoryRaw::exec(inv, "ALTER TABLE sched_requests DROP COLUMN not_before"));
    REQUIRE(InventoryRaw::exec(inv, "DELETE FROM schema_migrations WHERE version = 6"));
    REQUIRE(InventoryRaw::exec(inv, "PRAGMA user_version=5"));
    for (auto [attempts, state] : std::vector<std::pair<int64_t, std::string>>{
             {0, "enqueued"}, {1, "enqueued"}, {3, "enqueued"}, {9, "enqueued"}, {2, "failed"}})
      REQUIRE(InventoryRaw::exec(
          inv,
          "INSERT INTO sched_requests (state, policy, spec, attempts, queue_pos, created_at, "
          "updated_at) VALUES (?, 'pipeline', '', ?, 1, ?, ?)",
          {state, attempts, std::string(kNow), std::string(kNow)}));
  }
  auto inv = Inventory::open(db, false).value();
  CHECK(inv.schema_version() == Inventory::latest_schema_version());
  const int64_t t = 1767225600;  // kNow
  std::vector<int64_t> due;
  auto rows = RequestQueue(inv).list().value();
  for (const auto& r : rows) due.push_back(r.not_before);
  CHECK(due == std::vector<int64_t>{0, t + 30, t + 120, t + 600, 0});
  auto plan = InventoryRaw::query(
                  inv,
                  "EXPLAIN QUERY PLAN SELECT id FROM sched_requests WHERE state = 'enqueued' "
                  "ORDER BY queue_pos, id LIMIT 1")
                  .value();
  REQUIRE_FALSE(plan.empty());
  CHECK(plan[0]["detail"].get<std::string>().find("sched_requests_queue") != std::string::npos);
}

TEST_CASE(
    "the scheduler's world rows: devices, clusters with their members' device rows, services, "
    "RTTs") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  for (const char* d : {"b", "a", "c"}) REQUIRE(add_device(inv, d));
  std::string now(kNow);
  REQUIRE(
      InventoryRaw::exec(inv,
                         "UPDATE devices SET tier = 'local', facts = '{\"cpus\":4}', status = 'ok' "
                         "WHERE name = 'a'"));
  REQUIRE(
      InventoryRaw::exec(inv,
                         "INSERT INTO clusters (name, kind, tier, created_at, updated_at) VALUES "
                         "('y', 'devices', NULL, ?1, ?1), ('x', 'devices', 'cloud', ?1, ?1)",
                         {now}));
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO cluster_members (cluster, device, state) VALUES ('y', 'b', 'ready'), "
      "('y', 'a', 'failed'), ('x', 'a', 'ready')"));
  REQUIRE(
      InventoryRaw::exec(inv,
                         "INSERT INTO services (name, cluster, spec, placement, state, created_at, "
                         "updated_at) VALUES ('web', 'x', 'S', '{}', 'deployed', ?1, ?1), "
                         "('api', 'y', 'T', NULL, 'removed', ?1, ?1)",
                         {now}));
  CHECK(DeviceStore(inv).names().value() == std::vector<std::string>{"a", "b", "c"});
  ClusterStore clusters(inv);
  auto list = clusters.list().value();
  REQUIRE(list.size() == 2);
  CHECK((list[0].name == "x" && list[0].tier == "cloud" && list[1].name == "y" &&
         list[1].tier.empty()));
  auto members = clusters.member_devices().value();
  REQUIRE(members.size() == 3);
  CHECK((members[0].cluster == "x" && members[0].device == "a" &&
         members[0].member_state == "ready"));
  CHECK((members[0].tier == "local" && members[0].facts == R"({"cpus":4})" &&
         members[0].status == "ok"));
  CHECK((members[1].cluster == "y" && members[1].device == "a" &&
         members[1].member_state == "failed"));
  CHECK((members[2].device == "b" && members[2].tier.empty() && members[2].labels == "{}"));
  CHECK(clusters.member_names().value() == std::vector<std::string>{"a", "b"});
  auto services = ServiceStore(inv).all().value();
  REQUIRE(services.size() == 2);
  for (const auto& s : services) {
    if (s.name == "web") CHECK((s.cluster == "x" && s.spec == "S" && s.placement == "{}"));
    if (s.name == "api") CHECK((!s.placement && s.state == "removed"));
  }
  RttStore rtts(inv);
  REQUIRE(rtts.record("a", {{"c", 2.5}, {"b", 1.0}}));
  REQUIRE(rtts.record("a", {{"b", 3.0}}));  // a new measurement replaces the old one
  auto all = rtts.all().value();
  REQUIRE(all.size() == 2);
  CHECK((all[0].src == "a" && all[0].dst == "b" && all[0].ms == 3.0));
  CHECK((all[1].dst == "c" && all[1].ms == 2.5));
}

TEST_CASE(
    "ClusterStore and JournalStore: rows, members, another cluster's member, leave, remove, "
    "Kubernetes") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  REQUIRE(add_device(inv, "a"));
  CHECK(DeviceStore(inv).row("a").value()->at("host") == "10.213.0.11");
  CHECK_FALSE(DeviceStore(inv).row("ghost").value());
  std::string now(kNow);
  REQUIRE(InventoryRaw::exec(inv,
                             "INSERT INTO clusters (name, kind, created_at, updated_at) VALUES "
                             "('lab', 'devices', ?1, ?1), ('other', 'devices', ?1, ?1)",
                             {now}));
  REQUIRE(InventoryRaw::exec(inv,
                             "INSERT INTO cluster_members (cluster, device) VALUES ('lab', 'b'), "
                             "('lab', 'a'), ('other', 'c')"));
  REQUIRE(InventoryRaw::exec(
      inv,
      "INSERT INTO build_journal (cluster, run_id, device, step, status, at) VALUES "
      "('lab', 'r1', 'a', 'podman', 'ok', ?1), ('lab', 'r1', 'b', 'podman', 'failed', ?1)",
      {now}));
  ClusterStore clusters(inv);
  CHECK(clusters.get("lab").value()->at("kind") == "devices");
  CHECK_FALSE(clusters.get("ghost").value());
  CHECK(clusters.rows().value().size() == 2);
  auto members = clusters.members("lab").value();
  REQUIRE(members.size() == 2);
  CHECK((members[0]["device"] == "b" && members[1]["device"] == "a"));  // join order
  CHECK(clusters.other_cluster_of("c", "lab").value() == std::optional<std::string>("other"));
  CHECK_FALSE(clusters.other_cluster_of("c", "other").value());
  CHECK(JournalStore(inv).entries("lab").value().size() == 2);
  REQUIRE(clusters.remove_members("lab", {"b"}));
  CHECK(clusters.members("lab").value().size() == 1);
  auto journal = JournalStore(inv).entries("lab").value();
  REQUIRE(journal.size() == 1);
  CHECK((journal[0]["device"] == "a" && journal[0]["message"].is_null()));
  CHECK(clusters.get("lab").value()->at("updated_at") != kNow);
  REQUIRE(clusters.remove("lab"));
  CHECK_FALSE(clusters.get("lab").value());
  CHECK(clusters.members("lab").value().empty());
  CHECK(JournalStore(inv).entries("lab").value().empty());
  REQUIRE(clusters.put_kubernetes("k", "/kc", "ctx", "https://k:6443", false));
  auto k = *clusters.get("k").value();
  CHECK((k["kind"] == "kubernetes" && k["state"] == "registered" && k["context"] == "ctx"));
  REQUIRE(clusters.put_kubernetes("k", "/kc2", "ctx2", "https://k2:6443", true));
  k = *clusters.get("k").value();
  CHECK((k["kubeconfig"] == "/kc2" && k["api_server"] == "https://k2:6443"));
}

TEST_CASE("PinStore::on_cluster: the pins on a cluster's member devices only") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  REQUIRE(InventoryRaw::exec(inv,
                             "INSERT INTO clusters (name, kind, created_at, updated_at) VALUES "
                             "('lab', 'devices', ?1, ?1)",
                             {std::string(kNow)}));
  REQUIRE(InventoryRaw::exec(
      inv, "INSERT INTO cluster_members (cluster, device) VALUES ('lab', 'b'), ('lab', 'a')"));
  PinStore pins(inv);
  for (const char* d : {"a", "b", "c"}) REQUIRE(pins.put({d, "gedge-web-0", "1", ""}));
  REQUIRE(pins.put({"a", "api", "2", ""}));
  auto on = pins.on_cluster("lab").value();
  REQUIRE(on.size() == 3);
  CHECK((on[0].device == "a" && on[0].owner == "api" && on[1].owner == "gedge-web-0"));
  CHECK(on[2].device == "b");
  CHECK(pins.on_cluster("ghost").value().empty());
}

TEST_CASE("ServiceStore: put replaces a record, find, list by cluster, set_state, remove") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  ServiceStore services(inv);
  ServiceRecord web{"web", "lab", R"({"name":"web"})", R"({"placements":[]})", "deployed"};
  web.namespace_ = "shop";
  web.replicas = 2;
  REQUIRE(services.put(web));
  ServiceRecord other{"web", "edge", "{}", std::nullopt, "degraded"};
  REQUIRE(services.put(other));
  REQUIRE(services.put({"api", "lab", "{}", std::nullopt, "deployed"}));
  auto found = services.find("web", "").value();
  REQUIRE(found.size() == 2);  // by cluster
  CHECK((found[0].cluster == "edge" && found[0].state == "degraded" && !found[0].placement &&
         found[0].namespace_ == "default" && found[0].replicas == 0));
  CHECK((found[1].cluster == "lab" && found[1].spec == R"({"name":"web"})" &&
         found[1].placement == R"({"placements":[]})" && found[1].namespace_ == "shop" &&
         found[1].replicas == 2 && !found[1].updated_at.empty()));
  CHECK(services.find("web", "lab").value().size() == 1);
  CHECK(services.find("web", "ghost").value().empty());
  // A new deploy of web on lab replaces its record; the other cluster's record stays.
  web.replicas = 3;
  web.state = "degraded";
  web.placement.reset();
  REQUIRE(services.put(web));
  auto again = services.find("web", "lab").value();
  REQUIRE(again.size() == 1);
  CHECK((again[0].replicas == 3 && again[0].state == "degraded" && !again[0].placement));
  auto lab = services.list("lab").value();
  REQUIRE(lab.size() == 2);
  CHECK((lab[0].name == "api" && lab[1].name == "web"));
  auto every = services.list("").value();
  REQUIRE(every.size() == 3);
  CHECK((every[0].cluster == "edge" && every[1].name == "api" && every[2].name == "web"));
  CHECK(services.set_state("web", "lab", "removing").value());
  CHECK(services.find("web", "lab").value()[0].state == "removing");
  CHECK_FALSE(services.set_state("web", "ghost", "removing").value());
  CHECK(services.remove("web", "lab").value());
  CHECK_FALSE(services.remove("web", "lab").value());
  CHECK_FALSE(services.exists("web", "lab").value());
  CHECK(services.exists("web", "edge").value());
  // Inside a caller's transaction, a failure later in it takes the removal back.
  auto rolled = inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(ServiceStore(tx).remove("web", "edge"));
    return fail(ErrorCode::failure, "later step failed");
  });
  CHECK_FALSE(rolled);
  CHECK(services.exists("web", "edge").value());
}

TEST_CASE(
    "DeviceStore::facts: the JSON text ({} before any were gathered), nothing for no device") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  REQUIRE(add_device(inv, "a"));
  REQUIRE(add_device(inv, "b"));
  REQUIRE(InventoryRaw::exec(inv, "UPDATE devices SET facts = '{\"cpus\":4}' WHERE name = 'a'"));
  CHECK(DeviceStore(inv).facts("a").value() == std::optional<std::string>(R"({"cpus":4})"));
  CHECK(DeviceStore(inv).facts("b").value() == std::optional<std::string>("{}"));
  CHECK_FALSE(DeviceStore(inv).facts("ghost").value());
}

TEST_CASE(
    "ClusterStore build records: begin_build, JournalStore::append, finish_build, of_device") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  ClusterStore clusters(inv);
  JournalStore journal(inv);
  BuildStart b{"lab", "k3s", "a", "10.213.0.1:5000", true, "a", {"a", "b", "c"}, {}};
  b.failed.push_back({"c", "host key", "failed", "the key changed"});
  REQUIRE(clusters.begin_build(b, "run1"));
  auto row = clusters.get("lab").value();
  REQUIRE(row);
  CHECK(((*row)["kind"] == "devices" && (*row)["state"] == "building" &&
         (*row)["profile"] == "k3s" && (*row)["server"] == "a" && (*row)["monitoring"] == 1 &&
         (*row)["prometheus"] == "a"));
  auto members = clusters.members("lab").value();
  REQUIRE(members.size() == 3);
  CHECK((members[0]["device"] == "a" && members[0]["role"] == "server" &&
         members[0]["state"] == "pending"));
  CHECK((members[1]["role"] == "member" && members[2]["state"] == "failed"));
  auto lines = journal.entries("lab").value();
  REQUIRE(lines.size() == 1);
  CHECK((lines[0]["device"] == "c" && lines[0]["run_id"] == "run1" &&
         lines[0]["step"] == "host key" && lines[0]["status"] == "failed" &&
         lines[0]["message"] == "the key changed"));
  REQUIRE(journal.append("lab", "run1", {"a", "install k3s", "changed", ""}));
  CHECK(journal.entries("lab").value().size() == 2);

  // Not every member ready: partial; a finished member's metrics URL is recorded.
  std::vector<MemberOutcome> out{
      {"a", "ready", "http://10.213.0.11:9100/metrics", JournalLine{"a", "complete", "ok", "1"}},
      {"b", "failed", "", JournalLine{"b", "not finished", "failed", "stopped"}},
      {"c", "unreachable", "", std::nullopt}};
  CHECK(clusters.finish_build("lab", "run1", out, std::nullopt).value() == "partial");
  members = clusters.members("lab").value();
  CHECK((members[0]["state"] == "ready" &&
         members[0]["metrics_url"] == "http://10.213.0.11:9100/metrics"));
  CHECK((members[1]["state"] == "failed" && members[2]["state"] == "unreachable"));
  CHECK(journal.entries("lab").value().size() == 4);
  CHECK(clusters.get("lab").value()->at("state") == "partial");
  CHECK(clusters.get("lab").value()->at("kubeconfig").is_null());

  // A second build of the same cluster: building again, new registry, no Prometheus; existing
  // members keep their role and state until the run ends.
  BuildStart again{"lab", "k3s", "a", "", false, "", {"a", "b", "c"}, {}};
  REQUIRE(clusters.begin_build(again, "run2"));
  row = clusters.get("lab").value();
  CHECK(((*row)["state"] == "building" && (*row)["registry"] == "" && (*row)["monitoring"] == 0 &&
         (*row)["prometheus"].is_null()));
  CHECK(clusters.members("lab").value()[0]["state"] == "ready");
  std::vector<MemberOutcome> all_ready;
  for (std::string d : {"a", "b", "c"}) all_ready.push_back({d, "ready", "", std::nullopt});
  CHECK(clusters
            .finish_build("lab", "run2", all_ready,
                          std::pair<std::string, std::string>{"/k/lab.yaml", "https://a:6443"})
            .value() == "ready");
  row = clusters.get("lab").value();
  CHECK(((*row)["kubeconfig"] == "/k/lab.yaml" && (*row)["api_server"] == "https://a:6443"));
  CHECK(clusters.members("lab").value()[0]["metrics_url"].is_null());  // none given: cleared
  std::vector<MemberOutcome> none_ready;
  for (std::string d : {"a", "b", "c"}) none_ready.push_back({d, "failed", "", std::nullopt});
  CHECK(clusters.finish_build("lab", "run3", none_ready, std::nullopt).value() == "failed");

  REQUIRE(clusters.begin_build({"edge", "containers", "", "", false, "", {"b"}, {}}, "run4"));
  CHECK(clusters.of_device("b").value() == std::vector<std::string>{"edge", "lab"});
  CHECK(clusters.of_device("ghost").value().empty());

  // One transaction: a journal line for a member of no cluster row still goes with the rest when
  // the caller's transaction fails.
  auto rolled = inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(ClusterStore(tx).begin_build(
        {"gone", "containers", "", "", false, "", {"a"}, {{"a", "host key", "failed", "x"}}},
        "run5"));
    return fail(ErrorCode::failure, "later step failed");
  });
  CHECK_FALSE(rolled);
  CHECK_FALSE(clusters.exists("gone").value());
  CHECK(journal.entries("gone").value().empty());
}

TEST_CASE("RuntimeStore: add once, by id, prefix, name (newest first), pushes, remove") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  RuntimeStore runtimes(inv);
  CHECK(runtimes.add({"aaaa1111", "py", R"({"m":1})", "2026-01-01T00:00:00Z"}, 3, 30).value());
  CHECK_FALSE(runtimes.add({"aaaa1111", "other", "{}", "2026-09-09T00:00:00Z"}, 1, 1).value());
  CHECK(runtimes.add({"aaaa2222", "py", R"({"m":2})", "2026-01-02T00:00:00Z"}, 1, 1).value());
  // Same created_at: the later recorded is the newer.
  CHECK(runtimes.add({"bbbb3333", "py", R"({"m":3})", "2026-01-02T00:00:00Z"}, 1, 1).value());
  CHECK(runtimes.add({"cccc4444", "cuda", "{}", "2026-01-01T00:00:00Z"}, 1, 1).value());
  CHECK(runtimes.exists("aaaa1111").value());
  CHECK_FALSE(runtimes.exists("aaaa").value());
  auto one = runtimes.get("aaaa1111").value().value();
  CHECK((one.name == "py" && one.manifest == R"({"m":1})" &&
         one.created_at == "2026-01-01T00:00:00Z"));
  CHECK_FALSE(runtimes.get("zzzz").value());
  CHECK(runtimes.with_prefix("aaaa", 3).value().size() == 2);
  CHECK(runtimes.with_prefix("aaaa", 1).value().size() == 1);
  CHECK(runtimes.with_prefix("cccc", 3).value().front().id == "cccc4444");
  CHECK(runtimes.newest("py").value().value().id == "bbbb3333");
  CHECK_FALSE(runtimes.newest("ghost").value());
  auto named = runtimes.named("py").value();
  REQUIRE(named.size() == 3);
  CHECK((named[0].id == "bbbb3333" && named[1].id == "aaaa2222" && named[2].id == "aaaa1111"));
  CHECK(named[0].manifest.empty());  // named() leaves manifests out
  auto all = runtimes.all().value();
  REQUIRE(all.size() == 4);
  CHECK((all[0].id == "bbbb3333" && all[2].id == "cccc4444" && all[3].id == "aaaa1111"));
  CHECK(all[0].manifest == R"({"m":3})");

  REQUIRE(runtimes.record_push("aaaa1111", {"edge2", "/opt/a", "t1"}));
  REQUIRE(runtimes.record_push("aaaa1111", {"edge1", "/opt/a", "t1"}));
  REQUIRE(runtimes.record_push("aaaa1111", {"edge2", "/opt/b", "t2"}));  // moves, not a 2nd row
  REQUIRE(runtimes.record_push("aaaa2222", {"edge1", "/opt/c", "t3"}));
  auto pushes = runtimes.pushes("aaaa1111").value();
  REQUIRE(pushes.size() == 2);
  CHECK((pushes[0].target == "edge1" && pushes[1].target == "edge2"));
  CHECK((pushes[1].root == "/opt/b" && pushes[1].pushed_at == "t2"));

  REQUIRE(runtimes.remove({"aaaa1111", "cccc4444"}));
  CHECK_FALSE(runtimes.exists("aaaa1111").value());
  CHECK(runtimes.pushes("aaaa1111").value().empty());
  CHECK(runtimes.pushes("aaaa2222").value().size() == 1);
  CHECK(runtimes.all().value().size() == 2);
}

namespace {

DeviceRecord record(const std::string& name, const std::string& host, const std::string& fp) {
  DeviceRecord d;
  d.name = name;
  d.host = host;
  d.port = 2222;
  d.user = "gedgetest";
  d.tier = "local";
  d.labels = R"({"zone":"a"})";
  d.host_key_type = "ssh-ed25519";
  d.host_key_fp = fp;
  d.token_hash = "t-" + name;
  d.facts = R"({"cpus":4})";
  d.topology_xml = "<topology/>";
  d.rtt_ms = 1.5;
  d.auth = "gedge_key";
  d.groups = R"(["edge"])";
  d.now = kNow;
  return d;
}

}  // namespace

TEST_CASE("DeviceStore: insert, update, the address's devices, the token's owner, remove") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  DeviceStore devices(inv);
  REQUIRE(devices.insert(record("b", "10.213.0.12", "SHA256:k1")));
  auto a = record("a", "10.213.0.12", "SHA256:k1");
  a.proxy_jump = R"({"host":"10.213.0.1"})";
  a.identity = "/keys/id";
  REQUIRE(devices.insert(a));
  REQUIRE(devices.insert(record("c", "10.213.0.13", "SHA256:k2")));
  auto row = devices.row("a").value().value();
  CHECK((row["host"] == "10.213.0.12" && row["port"] == 2222 && row["status"] == "ok"));
  CHECK((row["identity"] == "/keys/id" && row["site"].is_null() && row["tier"] == "local"));
  CHECK((row["last_seen"] == kNow && row["created_at"] == kNow && row["rtt_ms"] == 1.5));
  CHECK((row["groups"] == R"(["edge"])" && row["topology_xml"] == "<topology/>"));
  auto at = devices.at_address("10.213.0.12", 2222).value();
  REQUIRE(at.size() == 2);  // by name; the other port and address are not there
  CHECK((at[0]["name"] == "a" && at[0]["proxy_jump"] == R"({"host":"10.213.0.1"})"));
  CHECK((at[1]["name"] == "b" && at[1]["host_key_fp"] == "SHA256:k1" &&
         at[1]["proxy_jump"].is_null()));
  CHECK(devices.at_address("10.213.0.12", 22).value().empty());
  CHECK(devices.with_token("t-b", "a").value() == std::optional<std::string>("b"));
  CHECK_FALSE(devices.with_token("t-b", "b").value());
  auto behind = devices.behind_jumps().value();
  REQUIRE(behind.size() == 1);
  CHECK((behind[0]["name"] == "a" && behind[0]["host"] == "10.213.0.12"));

  auto moved = record("a", "10.213.0.14", "SHA256:k3");
  moved.tier.reset();
  moved.now = "2026-02-02T00:00:00Z";
  REQUIRE(devices.update(moved));
  row = devices.row("a").value().value();
  CHECK((row["host"] == "10.213.0.14" && row["host_key_fp"] == "SHA256:k3"));
  CHECK((row["tier"].is_null() && row["proxy_jump"].is_null() && row["identity"].is_null()));
  CHECK((row["created_at"] == kNow && row["updated_at"] == "2026-02-02T00:00:00Z"));
  CHECK(devices.at_address("10.213.0.12", 2222).value().size() == 1);

  CHECK(devices.remove("a").value());
  CHECK_FALSE(devices.remove("a").value());
  CHECK_FALSE(devices.row("a").value());
  // A duplicate name is refused, not replaced.
  CHECK_FALSE(devices.insert(record("b", "10.213.0.99", "SHA256:x")));
  CHECK(devices.row("b").value().value()["host"] == "10.213.0.12");
}

TEST_CASE("DeviceStore: import, groups, a late pin, rekey and a jump pin") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  DeviceStore devices(inv);
  ImportedDevice d;
  d.name = "n1";
  d.host = "10.213.0.21";
  d.user = "root";
  d.groups = R"(["web"])";
  d.now = kNow;
  REQUIRE(devices.insert_imported(d));
  auto row = devices.row("n1").value().value();
  CHECK((row["status"] == "unknown" && row["host_key_fp"].is_null() && row["port"] == 22));
  CHECK((row["facts"] == "{}" && row["token_hash"].is_null() && row["identity"].is_null()));
  REQUIRE(devices.set_groups("n1", R"(["web","db"])", "2026-03-03T00:00:00Z"));
  REQUIRE(devices.pin_key("n1", "ssh-ed25519", "SHA256:p"));
  row = devices.row("n1").value().value();
  CHECK((row["groups"] == R"(["web","db"])" && row["updated_at"] == "2026-03-03T00:00:00Z"));
  CHECK((row["host_key_type"] == "ssh-ed25519" && row["host_key_fp"] == "SHA256:p"));

  REQUIRE(devices.insert(record("n2", "10.213.0.21", "SHA256:p")));
  REQUIRE(devices.rekey({"n1", "n2"}, "ssh-rsa", "SHA256:new", "2026-04-04T00:00:00Z"));
  for (const char* n : {"n1", "n2"}) {
    row = devices.row(n).value().value();
    CHECK((row["host_key_type"] == "ssh-rsa" && row["host_key_fp"] == "SHA256:new"));
    CHECK((row["status"] == "unknown" && row["updated_at"] == "2026-04-04T00:00:00Z"));
  }
  REQUIRE(devices.set_proxy_jump("n2", R"({"host":"b"})", kNow));
  CHECK(devices.row("n2").value().value()["proxy_jump"] == R"({"host":"b"})");
  // Inside a failing transaction, nothing stays.
  auto r = inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(DeviceStore(tx).set_groups("n1", "[]", kNow));
    GEDGE_TRY(DeviceStore(tx).remove("n2"));
    return fail(ErrorCode::failure, "later step failed");
  });
  REQUIRE_FALSE(r);
  CHECK(devices.row("n1").value().value()["groups"] == R"(["web","db"])");
  CHECK(devices.row("n2").value());
}

TEST_CASE("DeviceStore: check and exec results") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  for (const char* n : {"ok", "tok", "down", "ran", "bad"}) REQUIRE(add_device(inv, n));
  DeviceStore devices(inv);
  const std::string t = "2026-05-05T00:00:00Z";
  REQUIRE(devices.record_checks({{"ok", "ok", 2.5, R"({"cpus":8})", "<t/>"},
                                 {"tok", "token_mismatch", 3.5, "", std::nullopt},
                                 {"down", "unreachable", 0, "", std::nullopt}},
                                t));
  auto ok = devices.row("ok").value().value();
  CHECK((ok["status"] == "ok" && ok["last_seen"] == t && ok["rtt_ms"] == 2.5));
  CHECK((ok["facts"] == R"({"cpus":8})" && ok["topology_xml"] == "<t/>" && ok["updated_at"] == t));
  auto tok = devices.row("tok").value().value();
  CHECK((tok["status"] == "token_mismatch" && tok["last_seen"] == t && tok["rtt_ms"] == 3.5));
  CHECK(tok["facts"] == "{}");  // facts stay
  auto down = devices.row("down").value().value();
  CHECK(
      (down["status"] == "unreachable" && down["last_seen"].is_null() && down["updated_at"] == t));

  REQUIRE(devices.record_exec({{"ran", "failed"}, {"bad", "auth"}}, t));
  auto ran = devices.row("ran").value().value();
  CHECK((ran["status"] == "ok" && ran["last_seen"] == t && ran["updated_at"] == kNow));
  auto bad = devices.row("bad").value().value();
  CHECK((bad["status"] == "auth" && bad["last_seen"].is_null()));
}

TEST_CASE("DeviceStore: a filter by tier, groups and labels; names, rows and scan agree") {
  test::TempDir tmp;
  auto inv = Inventory::open(tmp.path / "gedge.db", true).value();
  DeviceStore devices(inv);
  auto put = [&](const char* name, const char* tier, const char* groups, const char* labels) {
    auto d = record(name, "10.213.0.30", "SHA256:x");
    d.tier = tier;
    d.groups = groups;
    d.labels = labels;
    REQUIRE(devices.insert(d));
  };
  put("d3", "local", R"(["web","db"])", R"({"zone":"a","gpu":"yes"})");
  put("d1", "local", R"(["web"])", R"({"zone":"a"})");
  put("d2", "cloud", R"(["web"])", R"({"zone":"b"})");
  put("d4", "local", "not json", R"({"zone":1})");  // matches no group, and zone is no string
  CHECK(devices.names(DeviceFilter{}).value() == std::vector<std::string>{"d1", "d2", "d3", "d4"});
  DeviceFilter f;
  f.tier = "local";
  f.groups = {"web"};
  f.labels = {{"zone", "a"}};
  CHECK(devices.names(f).value() == std::vector<std::string>{"d1", "d3"});
  f.labels.emplace_back("gpu", "yes");
  CHECK(devices.names(f).value() == std::vector<std::string>{"d3"});
  CHECK(devices.names(DeviceFilter{"", {"db", "web"}, {}}).value() ==
        std::vector<std::string>{"d3"});
  CHECK(devices.names(DeviceFilter{"", {}, {{"zone", "1"}}}).value().empty());
  auto named = devices.rows_named({"d2", "ghost", "d1"}).value();
  REQUIRE(named.size() == 2);
  CHECK(((named[0]["name"] == "d1" && named[1]["name"] == "d2") ||
         (named[0]["name"] == "d2" && named[1]["name"] == "d1")));
  CHECK(devices.rows_named({}).value().empty());
  auto rows = devices.rows(DeviceFilter{"local", {}, {}}).value();
  REQUIRE(rows.size() == 3);
  CHECK((rows[0]["name"] == "d1" && rows[2]["name"] == "d4"));
  std::vector<SqlRow> scanned;
  REQUIRE(devices.scan(DeviceFilter{"local", {}, {}}, [&](DeviceRowView& v) {
    SqlRow r = SqlRow::object();
    for (const char* k : {"name", "port", "rtt_ms", "site", "labels"}) r[k] = v.value(v.column(k));
    CHECK(v.column("no_such_column") == -1);
    CHECK(v.value(-1).is_null());
    scanned.push_back(r);
  }));
  REQUIRE(scanned.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (const char* k : {"name", "port", "rtt_ms", "site", "labels"})
      CHECK(scanned[i][k] == rows[i][k]);
  // An exception from the callback ends the scan and passes on.
  int seen = 0;
  CHECK_THROWS_AS((void)devices.scan(DeviceFilter{},
                                     [&](DeviceRowView&) {
                                       ++seen;
                                       throw std::runtime_error("stop");
                                     }),
                  std::runtime_error);
  CHECK(seen == 1);
}
