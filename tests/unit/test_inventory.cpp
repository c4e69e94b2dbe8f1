#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gedge/inventory.hpp"
#include "test_helpers.hpp"

using namespace gedge;

namespace {
const char* kNow = "2026-01-01T00:00:00Z";

Result<void> add_device(Inventory& inv, const std::string& name) {
  return inv.write([&](Inventory& tx) -> Result<void> {
    GEDGE_TRY(
        tx.exec("INSERT INTO devices(name, host, user, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                {name, std::string("10.213.0.11"), std::string("gedgetest"), std::string(kNow),
                 std::string(kNow)}));
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
  auto rows = inv->query("SELECT version FROM schema_migrations ORDER BY version").value();
  REQUIRE(rows.size() == static_cast<size_t>(Inventory::latest_schema_version()));
  CHECK(rows.front()["version"] == 1);
  auto mode = inv->query("PRAGMA journal_mode").value();
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
  CHECK(again->query("SELECT count(*) AS n FROM schema_migrations").value()[0]["n"] ==
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
    REQUIRE(inv.exec("PRAGMA user_version=99"));
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
  auto rows = inv.query("SELECT name FROM devices WHERE name = ?", {evil}).value();
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
  CHECK(inv.query("SELECT * FROM devices").value().empty());
  // a constraint violation is an error, not a crash, and also rolls back
  REQUIRE(add_device(inv, "b"));
  CHECK_FALSE(add_device(inv, "b"));
  CHECK(inv.query("SELECT * FROM devices").value().size() == 1);
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
          GEDGE_TRY_ASSIGN(auto n, tx.query("SELECT count(*) AS n FROM devices"));
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
  CHECK(inv.query("SELECT count(*) AS n FROM devices").value()[0]["n"] == kProcs * kRows);
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
  CHECK(inv.query("SELECT count(*) AS n FROM schema_migrations").value()[0]["n"] ==
        Inventory::latest_schema_version());
}
