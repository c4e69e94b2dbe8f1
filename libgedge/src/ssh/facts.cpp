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

// ---- SHA-256 (FIPS 180-4); small and self-contained so the ssh module needs no extra library.
namespace {

constexpr std::array<uint32_t, 64> K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string msg(data);
  uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + off + i * 4);
      w[i] =
          (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + S1 + ch + K[static_cast<size_t>(i)] + w[i];
      uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = S0 + mj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  std::string out;
  for (uint32_t v : h) out += fmt::format("{:08x}", v);
  return out;
}

}  // namespace gedge
