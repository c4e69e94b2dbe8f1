// Device facts in one round trip (one remote shell script, sections marked "@@name"), and the
// SHA-256 used to store device tokens as hashes.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "gedge/device.hpp"
#include "gedge/text.hpp"

namespace gedge {

const std::string& facts_script() {
  // POSIX sh; every probe is optional so a minimal device still answers.
  static const std::string script = R"SH(
export LC_ALL=C PATH="$PATH:/usr/sbin:/sbin:/usr/local/bin"
echo @@arch; uname -m
echo @@kernel; uname -r
echo @@hostname; hostname 2>/dev/null || cat /etc/hostname 2>/dev/null
echo @@os; cat /etc/os-release 2>/dev/null
echo @@cpus; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
echo @@mem; grep -m1 MemTotal /proc/meminfo 2>/dev/null
echo @@disk; df -Pk / 2>/dev/null | tail -n 1
echo @@gpus; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=index,name,memory.total,driver_version,uuid --format=csv,noheader,nounits 2>/dev/null; fi
echo @@podman; if command -v podman >/dev/null 2>&1; then podman --version 2>/dev/null; fi
echo @@docker; if command -v docker >/dev/null 2>&1; then docker --version 2>/dev/null; fi
echo @@token; cat "$HOME/.config/gedge/device-token" 2>/dev/null
echo @@topology; if command -v lstopo-no-graphics >/dev/null 2>&1; then lstopo-no-graphics --of xml 2>/dev/null; fi
echo @@end
)SH";
  return script;
}

namespace {

std::string unquote(std::string v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
    return v.substr(1, v.size() - 2);
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(trim(cur));
  return out;
}

}  // namespace

nlohmann::json parse_facts(std::string_view out) {
  std::map<std::string, std::string> sec;
  std::string current;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string_view line =
        out.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? out.size() : nl + 1;
    if (line.size() > 2 && line.substr(0, 2) == "@@") {
      current = std::string(line.substr(2));
      sec[current];
      continue;
    }
    if (!current.empty()) {
      sec[current].append(line);
      sec[current].push_back('\n');
    }
  }
  nlohmann::json f = nlohmann::json::object();
  f["arch"] = trim(sec["arch"]);
  f["kernel"] = trim(sec["kernel"]);
  f["hostname"] = trim(sec["hostname"]);
  std::map<std::string, std::string> osr;
  for (const auto& l : split(sec["os"], '\n')) {
    auto eq = l.find('=');
    if (eq != std::string::npos) osr[l.substr(0, eq)] = unquote(l.substr(eq + 1));
  }
  f["os"] = osr.count("PRETTY_NAME") ? osr["PRETTY_NAME"] : osr["NAME"];
  f["os_id"] = osr["ID"];
  f["os_version"] = osr["VERSION_ID"];
  try {
    f["cpus"] = std::stoi(trim(sec["cpus"]));
  } catch (...) {
    f["cpus"] = nullptr;
  }
  {
    std::istringstream in(sec["mem"]);
    std::string key;
    long long kb = 0;
    in >> key >> kb;
    f["memory_bytes"] = kb > 0 ? nlohmann::json(kb * 1024) : nlohmann::json(nullptr);
  }
  {
    // Filesystem 1024-blocks Used Available Capacity Mounted-on
    std::istringstream in(sec["disk"]);
    std::string fs;
    long long blocks = 0, used = 0, avail = -1;
    in >> fs >> blocks >> used >> avail;
    f["disk_free_bytes"] = avail >= 0 ? nlohmann::json(avail * 1024) : nlohmann::json(nullptr);
  }
  f["gpus"] = nlohmann::json::array();
  for (const auto& l : split(sec["gpus"], '\n')) {
    if (l.empty()) continue;
    auto c = split(l, ',');
    nlohmann::json g{{"index", nullptr},
                     {"name", c.size() > 1 ? c[1] : l},
                     {"memory_bytes", nullptr},
                     {"driver_version", c.size() > 3 ? c[3] : ""},
                     {"uuid", c.size() > 4 ? c[4] : ""}};
    try {
      g["index"] = std::stoi(c.at(0));
      g["memory_bytes"] = std::stoll(c.at(2)) * 1024 * 1024;  // MiB
    } catch (...) {
    }
    f["gpus"].push_back(g);
  }
  auto runtime = [](const std::string& text, const char* name) -> nlohmann::json {
    std::string t = trim(text);
    if (t.empty()) return nullptr;
    // "podman version 4.3.1" / "Docker version 24.0.5, build ..."
    std::string version;
    auto at = t.find("version ");
    if (at != std::string::npos) {
      version = t.substr(at + 8);
      version = version.substr(0, version.find_first_of(", \n"));
    }
    return nlohmann::json{{"name", name}, {"version", version}};
  };
  auto podman = runtime(sec["podman"], "podman");
  auto docker = runtime(sec["docker"], "docker");
  f["container_runtime"] = !podman.is_null() ? podman : docker;
  f["token"] = trim(sec["token"]);
  std::string topo = trim(sec["topology"]);
  f["topology_xml"] = topo.empty() ? nlohmann::json(nullptr) : nlohmann::json(topo);
  f["complete"] = sec.count("end") > 0;
  return f;
}

}  // namespace gedge
