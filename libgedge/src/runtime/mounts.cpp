// Mount specs for a materialised bundle: Kubernetes volumes/volumeMounts/env, podman flags,
// path.sh.
#include <fmt/format.h>

#include "gedge/output.hpp"
#include "gedge/runtime.hpp"

namespace gedge::runtime {

namespace {

std::string join(const nlohmann::json& arr, std::string_view sep) {
  std::string out;
  for (const auto& v : arr) {
    if (!out.empty()) out += sep;
    out += v.get<std::string>();
  }
  return out;
}

// POSIX shell single-quoting (only when needed).
std::string shq(std::string_view s) {
  bool plain = !s.empty();
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("@%+=:,./_-").find(c) != std::string_view::npos))
      plain = false;
  if (plain) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string clean_root(std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> env_wiring(const nlohmann::json& manifest) {
  static const char* kSystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::vector<std::pair<std::string, std::string>> out;
  auto env = manifest.value("env", nlohmann::json::object());
  std::string path = join(env.value("PATH", nlohmann::json::array()), ":");
  out.emplace_back("PATH", path.empty() ? kSystemPath : path + ":" + kSystemPath);
  std::string ld = join(env.value("LD_LIBRARY_PATH", nlohmann::json::array()), ":");
  if (!ld.empty()) out.emplace_back("LD_LIBRARY_PATH", ld);
  for (auto it = env.begin(); it != env.end(); ++it)
    if (it.key() != "PATH" && it.key() != "LD_LIBRARY_PATH" && it->is_string())
      out.emplace_back(it.key(), it->get<std::string>());
  return out;
}

Result<std::string> render_mounts(const Bundle& b, const MountRequest& req) {
  std::string prefix = b.manifest.value("prefix", "");
  std::string root = clean_root(req.root);
  if (root.empty() || root[0] != '/')
    return fail(
        ErrorCode::usage, fmt::format("--root '{}' must be an absolute path", req.root),
        "absolute paths only: a relative mount path resolves differently in every container");
  std::string host_dir = root + "/" + b.id;
  auto env = env_wiring(b.manifest);
  std::string vol = "gedge-rt-" + b.id.substr(0, 12);
  switch (req.format) {
    case MountFormat::podman: {
      std::string out = "-v " + shq(host_dir + ":" + prefix + ":ro");
      for (const auto& [k, v] : env) out += " -e " + shq(k + "=" + v);
      return out + "\n";
    }
    case MountFormat::sh: {
      std::string out = fmt::format(
          "# gedge runtime {} ({}): source this inside a container where {} is mounted at {}\n",
          b.name, b.id.substr(0, 12), host_dir, prefix);
      auto envj = b.manifest.value("env", nlohmann::json::object());
      for (const auto& [k, v] : env) {
        if (k == "PATH") {
          std::string p = join(envj.value("PATH", nlohmann::json::array()), ":");
          out += p.empty() ? "" : "export PATH=" + shq(p) + "${PATH:+:$PATH}\n";
        } else if (k == "LD_LIBRARY_PATH") {
          out += "export LD_LIBRARY_PATH=" + shq(v) + "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n";
        } else {
          out += "export " + k + "=" + shq(v) + "\n";
        }
      }
      return out;
    }
    case MountFormat::k8s: {
      nlohmann::json volume{{"name", vol}};
      nlohmann::json mount{{"name", vol}, {"mountPath", prefix}, {"readOnly", true}};
      if (!req.pvc.empty()) {
        std::string sub = clean_root(req.sub_path);
        while (!sub.empty() && sub.front() == '/') sub.erase(0, 1);
        volume["persistentVolumeClaim"] = {{"claimName", req.pvc}, {"readOnly", true}};
        mount["subPath"] = sub.empty() ? b.id : sub + "/" + b.id;
      } else {
        volume["hostPath"] = {{"path", host_dir}, {"type", "Directory"}};
      }
      nlohmann::json envs = nlohmann::json::array();
      for (const auto& [k, v] : env) envs.push_back({{"name", k}, {"value", v}});
      nlohmann::json doc{{"volumes", nlohmann::json::array({volume})},
                         {"volumeMounts", nlohmann::json::array({mount})},
                         {"env", envs}};
      return fmt::format("# gedge runtime {} ({}): merge into the pod spec / container\n", b.name,
                         b.id.substr(0, 12)) +
             to_yaml(doc);
    }
  }
  return fail(ErrorCode::internal, "unknown mount format");
}

}  // namespace gedge::runtime
