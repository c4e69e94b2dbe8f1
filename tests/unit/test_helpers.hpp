// Shared unit-test fixtures.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace gedge::test {

// The source tree the tests were built from (its data, goldens and helper scripts).
const char* source_dir();

// The one golden-file check: compares `actual` with tests/golden/<rel> byte for byte;
// GEDGE_UPDATE_GOLDEN=1 writes it instead (review the diff before committing it).
inline void check_golden(const std::string& rel, const std::string& actual) {
  std::filesystem::path p = std::filesystem::path(source_dir()) / "tests" / "golden" / rel;
  if (const char* u = std::getenv("GEDGE_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << actual;
    MESSAGE("golden updated: " << p.string());
    return;
  }
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(),
                  "missing golden " << p.string() << " (GEDGE_UPDATE_GOLDEN=1 writes it)");
  std::string expected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(expected == actual);
}

// A fresh temporary directory, removed when the fixture ends. Use it as GEDGE_HOME.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gedge-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A helper script of the source tree ("tests/k8s_double/k8s_double.py --dir {dir}"), run with
// python3, that prints one JSON line when it is ready ({"port": ..., "pid": ...}); "{dir}" is
// replaced by a fresh temporary directory. The process (info["pid"]) gets SIGTERM at the end.
struct ReadyProcess {
  TempDir dir;
  FILE* pipe = nullptr;
  nlohmann::json info;
  explicit ReadyProcess(const std::string& script_and_args) {
    std::string cmd = "exec /usr/bin/python3 " + std::string(source_dir()) + "/" + script_and_args;
    for (std::size_t pos; (pos = cmd.find("{dir}")) != std::string::npos;)
      cmd.replace(pos, 5, dir.path.string());
    pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char line[4096] = {0};
    REQUIRE(fgets(line, sizeof line, pipe) != nullptr);
    info = nlohmann::json::parse(line);
  }
  ~ReadyProcess() {
    if (info.contains("pid")) kill(info["pid"].get<int>(), SIGTERM);
    if (pipe) pclose(pipe);
  }
  ReadyProcess(const ReadyProcess&) = delete;
  ReadyProcess& operator=(const ReadyProcess&) = delete;
};

}  // namespace gedge::test
