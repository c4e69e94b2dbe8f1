// Version detection from the files NVIDIA and Python ship, and the CUDA -> driver table.
#include <fmt/format.h>

#include <regex>

#include "gedge/paths.hpp"
#include "gedge/runtime.hpp"

namespace fs = std::filesystem;

namespace gedge::runtime {

namespace {

// A small file's text; empty when it is missing, not a regular file, unreadable or over 1 MiB.
std::string read_small(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec) || fs::file_size(p, ec) > (1u << 20)) return {};
  auto text = read_file(p);
  return text ? std::move(*text) : std::string();
}

// "#define NAME 8" from a header.
std::string define_value(const std::string& text, const std::string& name) {
  std::regex re("#\\s*define\\s+" + name + "\\s+([0-9]+)");
  std::smatch m;
  if (std::regex_search(text, m, re)) return m[1].str();
  return {};
}

std::string header_version(const fs::path& dir, const std::vector<std::string>& files,
                           const std::vector<std::string>& names) {
  for (const auto& f : files) {
    std::string text = read_small(dir / f);
    if (text.empty()) continue;
    std::string major = define_value(text, names[0]);
    if (major.empty()) continue;
    std::string v = major;
    for (std::size_t i = 1; i < names.size(); ++i) {
      std::string part = define_value(text, names[i]);
      if (part.empty()) break;
      v += "." + part;
    }
    return v;
  }
  return {};
}

std::string cuda_version(const fs::path& dir) {
  std::string j = read_small(dir / "version.json");
  if (!j.empty()) {
    auto doc = nlohmann::json::parse(j, nullptr, false);
    if (!doc.is_discarded() && doc.contains("cuda") && doc["cuda"].is_object() &&
        doc["cuda"].value("version", "").size())
      return doc["cuda"]["version"].get<std::string>();
  }
  std::string t = read_small(dir / "version.txt");
  std::smatch m;
  static const std::regex re(R"(CUDA Version\s+([0-9]+(\.[0-9]+)*))");
  if (!t.empty() && std::regex_search(t, m, re)) return m[1].str();
  std::string cv = read_small(dir / "include" / "cuda.h");
  std::string ver = define_value(cv, "CUDA_VERSION");
  if (!ver.empty()) {
    int n = std::stoi(ver);
    return fmt::format("{}.{}", n / 1000, (n % 1000) / 10);
  }
  return {};
}

std::string python_version(const fs::path& dir) {
  std::string cfg = read_small(dir / "pyvenv.cfg");
  std::smatch m;
  static const std::regex re(
      R"((?:^|\n)\s*(?:version|version_info)\s*=\s*([0-9]+\.[0-9]+(\.[0-9]+)?))");
  if (!cfg.empty() && std::regex_search(cfg, m, re)) return m[1].str();
  std::error_code ec;
  std::string best;
  static const std::regex lib(R"(python([0-9]+\.[0-9]+))");
  for (auto it = fs::directory_iterator(dir / "lib", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (std::regex_match(n, m, lib) && compare_versions(m[1].str(), best) > 0) best = m[1].str();
  }
  return best;
}

}  // namespace

int compare_versions(std::string_view a, std::string_view b) {
  auto parts = [](std::string_view s) {
    std::vector<long> v;
    long cur = -1;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        cur = (cur < 0 ? 0 : cur) * 10 + (c - '0');
      } else {
        if (cur >= 0) v.push_back(cur);
        cur = -1;
      }
    }
    if (cur >= 0) v.push_back(cur);
    return v;
  };
  auto x = parts(a), y = parts(b);
  std::size_t n = std::max(x.size(), y.size());
  for (std::size_t i = 0; i < n; ++i) {
    long p = i < x.size() ? x[i] : 0, q = i < y.size() ? y[i] : 0;
    if (p != q) return p < q ? -1 : 1;
  }
  return 0;
}

std::pair<std::string, std::string> min_driver_for_cuda(std::string_view cuda) {
  // CUDA Toolkit release notes, table "CUDA Toolkit and Corresponding Driver Versions" (Linux,
  // GA releases), and the minor-version-compatibility floor per major version.
  struct Row {
    const char* cuda;
    const char* driver;
  };
  static const Row rows[] = {
      {"13.0", "580.65.06"}, {"12.9", "575.51.03"}, {"12.8", "570.26"},    {"12.6", "560.28.03"},
      {"12.5", "555.42.02"}, {"12.4", "550.54.14"}, {"12.3", "545.23.06"}, {"12.2", "535.54.03"},
      {"12.1", "530.30.02"}, {"12.0", "525.60.13"}, {"11.8", "520.61.05"}, {"11.7", "515.43.04"},
      {"11.6", "510.39.01"}, {"11.5", "495.29.05"}, {"11.4", "470.42.01"}, {"11.3", "465.19.01"},
      {"11.2", "460.27.03"}, {"11.1", "455.23"},    {"11.0", "450.36.06"}, {"10.2", "440.33"},
      {"10.1", "418.39"},    {"10.0", "410.48"},    {"9.2", "396.26"},     {"9.0", "384.81"},
  };
  if (cuda.empty()) return {};
  std::string full;
  for (const auto& r : rows) {
    // rows are newest first: the first row whose version <= cuda's major.minor applies
    if (compare_versions(r.cuda, cuda) <= 0) {
      // only within the same major version
      if (std::string_view(r.cuda).substr(0, std::string_view(r.cuda).find('.')) ==
          cuda.substr(0, cuda.find('.')))
        full = r.driver;
      break;
    }
  }
  std::string compat;
  std::string major(cuda.substr(0, cuda.find('.')));
  if (major == "13") compat = "580.65.06";
  if (major == "12") compat = "525.60.13";
  if (major == "11") compat = "450.80.02";
  if (compat.empty()) compat = full;
  return {full, compat};
}

nlohmann::json detect_versions(const std::vector<ComponentSpec>& components) {
  nlohmann::json v = nlohmann::json::object();
  auto set = [&](const char* key, const std::string& val) {
    if (!val.empty() && !v.contains(key)) v[key] = val;
  };
  for (const auto& c : components) {
    set("cuda", cuda_version(c.dir));
    set("cudnn", header_version(c.dir, {"include/cudnn_version.h", "include/cudnn.h"},
                                {"CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"}));
    set("tensorrt", header_version(c.dir, {"include/NvInferVersion.h"},
                                   {"NV_TENSORRT_MAJOR", "NV_TENSORRT_MINOR", "NV_TENSORRT_PATCH",
                                    "NV_TENSORRT_BUILD"}));
    set("nccl",
        header_version(c.dir, {"include/nccl.h"}, {"NCCL_MAJOR", "NCCL_MINOR", "NCCL_PATCH"}));
    set("python", python_version(c.dir));
  }
  return v;
}

nlohmann::json check_driver(const nlohmann::json& manifest, const nlohmann::json& facts) {
  nlohmann::json out;
  std::string cuda = manifest.value("/versions/cuda"_json_pointer, std::string());
  const auto& req = manifest.value("requires", nlohmann::json::object());
  std::string full = req.value("cuda_driver_min", std::string());
  std::string compat = req.value("cuda_driver_min_compat", std::string());
  out["cuda"] = cuda.empty() ? nlohmann::json(nullptr) : nlohmann::json(cuda);
  out["driver_min"] = full.empty() ? nlohmann::json(nullptr) : nlohmann::json(full);
  out["driver_min_compat"] = compat.empty() ? nlohmann::json(nullptr) : nlohmann::json(compat);
  std::string driver;
  if (facts.is_object() && facts.contains("gpus") && facts["gpus"].is_array()) {
    for (const auto& g : facts["gpus"]) {
      if (!g.is_object() || !g.contains("driver") || !g["driver"].is_string()) continue;
      std::string d = g["driver"].get<std::string>();
      if (driver.empty() || compare_versions(d, driver) < 0) driver = d;  // the oldest GPU decides
    }
  }
  out["driver"] = driver.empty() ? nlohmann::json(nullptr) : nlohmann::json(driver);
  if (cuda.empty()) {
    out["verdict"] = "no_cuda";
    out["reason"] = "the bundle has no CUDA component; any driver (or none) will do";
  } else if (driver.empty()) {
    out["verdict"] = "unknown";
    out["reason"] = "the device's facts show no NVIDIA driver (no GPU, or facts not gathered)";
  } else if (!full.empty() && compare_versions(driver, full) >= 0) {
    out["verdict"] = "ok";
    out["reason"] = fmt::format("driver {} >= {} required by CUDA {}", driver, full, cuda);
  } else if (!compat.empty() && compare_versions(driver, compat) >= 0) {
    out["verdict"] = "compat";
    out["reason"] = fmt::format(
        "driver {} is older than {} (CUDA {}) but >= {}: runs only under minor-version "
        "compatibility (no PTX JIT of newer code)",
        driver, full, cuda, compat);
  } else {
    out["verdict"] = "too_old";
    out["reason"] = fmt::format("driver {} is older than {} required by CUDA {}", driver,
                                full.empty() ? compat : full, cuda);
  }
  return out;
}

}  // namespace gedge::runtime
