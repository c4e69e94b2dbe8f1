// Reading inputs: files, YAML streams, JSON objects/Lists/arrays, directories; telling gedge's
// own format from Kubernetes objects by apiVersion/kind.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "gedge/manifest.hpp"

namespace gedge::manifest {

using nlohmann::json;

namespace {

std::string group_of(const std::string& api_version) {
  auto slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

bool is_kubernetes(const json& d) {
  return d.is_object() && d.contains("apiVersion") && d["apiVersion"].is_string() &&
         d["apiVersion"].get<std::string>() != "gedge/v1";
}

// A sub-document (a List item, an array element) with its own line map.
Document sub_document(const Document& parent, const std::string& prefix, const json& value) {
  Document d;
  d.file = parent.file;
  d.doc = value;
  for (auto it = parent.lines.lower_bound(prefix);
       it != parent.lines.end() && it->first.starts_with(prefix); ++it) {
    std::string rest = it->first.substr(prefix.size());
    if (rest.empty() || rest[0] == '/') d.lines[rest] = it->second;
  }
  d.line = parent.line_of(prefix);
  return d;
}

Result<Object> make_object(Document d, const LoadOptions& o) {
  const json& j = d.doc;
  if (!j.is_object())
    return std::unexpected(d.error_at("", "expected a Kubernetes object (a mapping)"));
  if (!j.contains("kind") || !j["kind"].is_string() || j["kind"].get<std::string>().empty())
    return std::unexpected(d.error_at("", "a Kubernetes object needs a 'kind'"));
  Object obj;
  obj.api_version = j["apiVersion"].get<std::string>();
  obj.kind = j["kind"].get<std::string>();
  const json md = j.value("metadata", json::object());
  if (!md.is_object()) return std::unexpected(d.error_at("/metadata", "expected a mapping"));
  if (!md.contains("name") || !md["name"].is_string() || md["name"].get<std::string>().empty())
    return std::unexpected(d.error_at(
        j.contains("metadata") ? "/metadata" : "", fmt::format("{} needs metadata.name", obj.kind),
        "gedge applies objects by name (generateName is not supported)"));
  obj.name = md["name"].get<std::string>();
  if (md.contains("namespace")) {
    if (!md["namespace"].is_string())
      return std::unexpected(d.error_at("/metadata/namespace", "expected a string"));
    obj.namespace_ = md["namespace"].get<std::string>();
  }
  obj.role = role_of(obj.api_version, obj.kind);
  if (obj.role == Role::unknown && !o.allow_unknown_kinds)
    return std::unexpected(d.error_at(
        "/kind", fmt::format("unknown kind '{}' (apiVersion {})", obj.kind, obj.api_version),
        "gedge places Pod, Deployment, StatefulSet, DaemonSet and Job, and passes Service, "
        "ConfigMap, Secret, "
        "PersistentVolumeClaim, PersistentVolume, NetworkAttachmentDefinition, "
        "HorizontalPodAutoscaler, "
        "ServiceMonitor and Ingress through; --allow-unknown-kinds passes other kinds to "
        "Kubernetes as they are"));
  obj.source = std::move(d);
  return obj;
}

// Adds the documents of one file to `in`.
Result<void> add_documents(Input& in, const std::string& text, const std::string& file,
                           const LoadOptions& o, std::vector<int>& gedge_lines) {
  GEDGE_TRY_ASSIGN(auto docs, parse_documents(text, file, o.limits));
  for (auto& d : docs) {
    if (d.doc.is_array()) {
      // A JSON array of objects (what `gedge svc render -o json` prints): each element.
      for (std::size_t i = 0; i < d.doc.size(); ++i) {
        std::string ptr = "/" + std::to_string(i);
        if (d.doc[i].is_object() && d.doc[i].value("apiVersion", "") == "gedge/v1")
          continue;  // a plan
        if (!is_kubernetes(d.doc[i]))
          return std::unexpected(
              d.error_at(ptr, "expected a Kubernetes object with apiVersion and kind"));
        GEDGE_TRY_ASSIGN(auto obj, make_object(sub_document(d, ptr, d.doc[i]), o));
        in.objects.push_back(std::move(obj));
      }
      continue;
    }
    if (!is_kubernetes(d.doc)) {
      if (d.doc.is_object() && d.doc.value("kind", "") == "ContainerHostPlan")
        continue;  // gedge's own output
      gedge_lines.push_back(d.line);
      in.gedge_file = file;
      in.gedge_text = text;
      continue;
    }
    if (d.doc.value("kind", "") == "List" ||
        (d.doc.value("kind", "").ends_with("List") && d.doc.contains("items"))) {
      const json& items = d.doc.value("items", json::array());
      if (!items.is_array())
        return std::unexpected(d.error_at("/items", "expected a list of objects"));
      for (std::size_t i = 0; i < items.size(); ++i) {
        std::string ptr = "/items/" + std::to_string(i);
        if (!is_kubernetes(items[i]))
          return std::unexpected(
              d.error_at(ptr, "expected a Kubernetes object with apiVersion and kind"));
        GEDGE_TRY_ASSIGN(auto obj, make_object(sub_document(d, ptr, items[i]), o));
        in.objects.push_back(std::move(obj));
      }
      continue;
    }
    GEDGE_TRY_ASSIGN(auto obj, make_object(std::move(d), o));
    in.objects.push_back(std::move(obj));
  }
  return {};
}

Result<Input> finish(Input in, const std::vector<int>& gedge_lines) {
  if (!gedge_lines.empty()) {
    if (!in.objects.empty())
      return fail(
          ErrorCode::usage,
          fmt::format(
              "{}:{}: a gedge service or pipeline mixed with Kubernetes objects ({} first at {})",
              in.gedge_file, gedge_lines.front(), in.objects.front().kind,
              in.objects.front().where()),
          "keep gedge's short form and Kubernetes manifests in separate files");
    if (gedge_lines.size() > 1)
      return fail(
          ErrorCode::usage,
          fmt::format(
              "{}:{}: more than one YAML document; put one service or one pipeline in a file",
              in.gedge_file, gedge_lines[1]));
    in.is_gedge = true;
    return in;
  }
  if (in.objects.empty())
    return fail(
        ErrorCode::usage, fmt::format("{}: empty document", in.path),
        "a service file needs at least name and containers; a manifest at least one object");
  // One object per (kind, namespace, name): a second one would silently replace the first.
  std::map<std::string, const Object*> seen;
  for (const auto& obj : in.objects) {
    std::string key =
        fmt::format("{}/{}/{}/{}", group_of(obj.api_version), obj.kind, obj.namespace_, obj.name);
    auto [it, fresh] = seen.emplace(key, &obj);
    if (!fresh)
      return fail(ErrorCode::usage,
                  fmt::format("{}: {} '{}' appears twice (first at {})", obj.where(), obj.kind,
                              obj.name, it->second->where()));
  }
  return in;
}

}  // namespace

std::string Object::where() const {
  return fmt::format("{}:{}", source.file, source.line);
}

Role role_of(const std::string& api_version, const std::string& kind) {
  static const std::set<std::pair<std::string, std::string>> workloads = {{"", "Pod"},
                                                                          {"apps", "Deployment"},
                                                                          {"apps", "StatefulSet"},
                                                                          {"apps", "DaemonSet"},
                                                                          {"batch", "Job"}};
  static const std::set<std::pair<std::string, std::string>> companions = {
      {"", "Service"},
      {"", "ConfigMap"},
      {"", "Secret"},
      {"", "PersistentVolumeClaim"},
      {"", "PersistentVolume"},
      {"k8s.cni.cncf.io", "NetworkAttachmentDefinition"},
      {"autoscaling", "HorizontalPodAutoscaler"},
      {"monitoring.coreos.com", "ServiceMonitor"},
      {"networking.k8s.io", "Ingress"}};
  std::pair<std::string, std::string> k{group_of(api_version), kind};
  if (workloads.contains(k)) return Role::workload;
  if (companions.contains(k)) return Role::companion;
  return Role::unknown;
}

std::vector<const Object*> Input::workloads() const {
  std::vector<const Object*> out;
  for (const auto& o : objects)
    if (o.role == Role::workload) out.push_back(&o);
  return out;
}

std::string Input::canonical_text() const {
  if (is_gedge) return gedge_text;
  json items = json::array();
  for (const auto& o : objects) items.push_back(o.json());
  return json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(2) + "\n";
}

Result<Input> parse(const std::string& text, const std::string& file, const LoadOptions& o) {
  Input in;
  in.path = file;
  std::vector<int> gedge_lines;
  GEDGE_TRY(add_documents(in, text, file, o, gedge_lines));
  return finish(std::move(in), gedge_lines);
}

Result<Input> load(const std::filesystem::path& path, const LoadOptions& o) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    GEDGE_TRY_ASSIGN(auto text, read_input_file(path, o.limits.max_bytes));
    return parse(text, path.string(), o);
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    auto ext = e.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml" || ext == ".json") && e.is_regular_file())
      files.push_back(e.path());
  }
  if (ec)
    return fail(ErrorCode::usage,
                fmt::format("cannot read directory '{}': {}", path.string(), ec.message()));
  std::sort(files.begin(), files.end());
  if (files.empty())
    return fail(
        ErrorCode::usage,
        fmt::format("{}: no *.yaml, *.yml or *.json files in the directory", path.string()));
  if (files.size() > 1000)
    return fail(ErrorCode::usage, fmt::format("{}: more than 1000 files", path.string()));
  Input in;
  in.path = path.string();
  std::vector<int> gedge_lines;
  for (const auto& f : files) {
    GEDGE_TRY_ASSIGN(auto text, read_input_file(f, o.limits.max_bytes));
    GEDGE_TRY(add_documents(in, text, f.string(), o, gedge_lines));
  }
  return finish(std::move(in), gedge_lines);
}

const json* pod_spec(const Object& w) {
  const json& j = w.json();
  if (w.kind == "Pod") return j.contains("spec") && j["spec"].is_object() ? &j["spec"] : nullptr;
  if (!j.contains("spec") || !j["spec"].is_object()) return nullptr;
  const json& t = j["spec"].value("template", json());
  if (!j["spec"].contains("template") || !t.is_object() || !t.contains("spec") ||
      !t["spec"].is_object())
    return nullptr;
  return &j["spec"]["template"]["spec"];
}

std::string pod_spec_pointer(const Object& w) {
  return w.kind == "Pod" ? "/spec" : "/spec/template/spec";
}

}  // namespace gedge::manifest
