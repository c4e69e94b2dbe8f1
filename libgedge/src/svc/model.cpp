// Validated JSON -> the one service model: v1 short form and v2 container form normalised,
// GS-Engine's defaults applied (seeds-code.md §1), and the rules a JSON schema cannot say
// (form mixing, duplicate names, cycles, requests <= limits, integer CPU for topologyAware).
#include <fmt/format.h>

#include <cmath>
#include <set>

#include "gedge/paths.hpp"
#include "gedge/quantity.hpp"
#include "source.hpp"

namespace gedge::svc {

std::optional<double> parse_cpu(const std::string& q) {
  auto v = parse_cpu_quantity(nlohmann::json(q));
  return v ? std::optional<double>(*v) : std::nullopt;
}

std::optional<double> parse_bytes(const std::string& q) {
  auto v = parse_memory_quantity(nlohmann::json(q));
  return v ? std::optional<double>(*v) : std::nullopt;
}

namespace {

using detail::Source;
using nlohmann::json;

std::map<std::string, std::string> string_map(const json& j) {
  std::map<std::string, std::string> out;
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = it.value().get<std::string>();
  return out;
}

std::string image_basename(const std::string& image) {
  std::string s = image;
  if (auto at = s.find('@'); at != std::string::npos) s = s.substr(0, at);
  if (auto slash = s.rfind('/'); slash != std::string::npos) s = s.substr(slash + 1);
  if (auto colon = s.find(':'); colon != std::string::npos) s = s.substr(0, colon);
  return s;
}

// Quantity map check: every value parses (Kubernetes' grammar, in range); returns the text.
Result<std::map<std::string, std::string>> resource_list(const Source& src, const json& j,
                                                         const std::string& ptr) {
  std::map<std::string, std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string q = gedge::quantity_text(it.value());
    auto v = it.key() == "cpu" ? parse_cpu_quantity(it.value(), it.key())
                               : parse_memory_quantity(it.value(), it.key());
    if (!v) {
      std::string what = v.error().message.substr(v.error().message.find(": ") + 2);
      return std::unexpected(
          src.error_at(ptr + "/" + it.key(), what,
                       v.error().hint.empty()
                           ? (it.key() == "cpu" ? "CPU is cores (2, 0.5) or millicores (500m)"
                                                : "memory is bytes with a suffix (512Mi, 1Gi)")
                           : v.error().hint));
    }
    out[it.key()] = q;
  }
  return out;
}

Result<void> check_requests_le_limits(const Source& src, const ContainerSpec& c,
                                      const std::string& ptr) {
  for (const auto& [k, req] : c.requests) {
    auto lim = c.limits.find(k);
    if (lim == c.limits.end()) continue;
    auto rq = k == "cpu" ? parse_cpu(req) : parse_bytes(req);
    auto lm = k == "cpu" ? parse_cpu(lim->second) : parse_bytes(lim->second);
    if (rq && lm && *rq > *lm + 1e-9)
      return std::unexpected(src.error_at(
          ptr, fmt::format("resources: request {}={} exceeds its limit {}", k, req, lim->second),
          "Kubernetes rejects requests above limits; raise the limit or lower the request"));
  }
  return {};
}

// One service body (bare file, `service:` wrapper, or a pipeline stage) at `ptr`.
Result<Service> build_service(const Source& src, const json& body, const std::string& ptr,
                              bool stage) {
  Service s;
  s.line = src.line_of(ptr);
  s.name = body.at("name").get<std::string>();
  if (body.contains("namespace")) s.namespace_ = body["namespace"].get<std::string>();
  if (body.contains("type")) s.type = body["type"].get<std::string>();
  if (body.contains("replicas")) s.replicas = body["replicas"].get<int>();
  if (body.contains("labels")) s.labels = string_map(body["labels"]);
  for (const auto& [k, v] : s.labels)
    if (k == "app" || k == "service")
      return std::unexpected(src.error_at(
          ptr + "/labels/" + k, fmt::format("label '{}' is set by gedge to the service name", k)));

  const json& containers = body.at("containers");
  bool any_string = false, any_object = false;
  for (const auto& c : containers) (c.is_string() ? any_string : any_object) = true;
  if (any_string && any_object) {
    std::size_t i = 0;
    while (i < containers.size() && containers[i].is_string() == containers[0].is_string()) ++i;
    return std::unexpected(
        src.error_at(ptr + "/containers/" + std::to_string(i),
                     "mixes the v1 form (image strings) with the v2 form (container objects)",
                     "use either containers: [image, ...] with top-level ports, or containers: "
                     "[{image, ports}, ...]"));
  }
  s.form = any_string ? 1 : 2;

  if (s.form == 2 && body.contains("ports"))
    return std::unexpected(src.error_at(ptr + "/ports",
                                        "top-level ports belong to the v1 form (image strings)",
                                        "in the v2 form put ports under containers[i].ports"));
  if (body.contains("ports"))
    for (const auto& p : body["ports"]) s.service_ports.push_back(p.get<int>());
  if (body.contains("monitorPorts"))
    for (const auto& p : body["monitorPorts"]) s.monitor_ports.push_back(p.get<int>());

  std::set<std::string> cnames;
  std::set<std::pair<int, std::string>> cports;
  for (std::size_t i = 0; i < containers.size(); ++i) {
    std::string cptr = ptr + "/containers/" + std::to_string(i);
    const json& cj = containers[i];
    ContainerSpec c;
    if (s.form == 1) {
      c.image = cj.get<std::string>();
      c.name = image_basename(c.image);
      // GS-Engine v1 built-in resources.
      c.requests = {{"cpu", "100m"}, {"memory", "100Mi"}};
      c.limits = {{"cpu", "1000m"}, {"memory", "1Gi"}};
    } else {
      c.image = cj.at("image").get<std::string>();
      c.name = cj.contains("name") ? cj["name"].get<std::string>()
                                   : (i == 0 ? s.name : s.name + std::to_string(i));
      for (std::size_t k = 0; cj.contains("ports") && k < cj["ports"].size(); ++k) {
        const json& pj = cj["ports"][k];
        PortSpec p;
        p.container_port = pj.at("containerPort").get<int>();
        p.protocol = pj.value("protocol", "TCP");
        p.external_port = pj.value("externalPort", p.container_port);
        if (!cports.insert({p.container_port, p.protocol}).second)
          return std::unexpected(
              src.error_at(cptr + "/ports/" + std::to_string(k) + "/containerPort",
                           fmt::format("port {}/{} appears twice in the service", p.container_port,
                                       p.protocol)));
        c.ports.push_back(p);
      }
      c.requests = {{"cpu", "200m"}, {"memory", "500Mi"}};
      c.limits = {{"cpu", "500m"}, {"memory", "1Gi"}};
      const json res = cj.value("resources", json::object());
      if (res.contains("acceleration")) {
        c.accelerated = true;
        const json& acc = res["acceleration"];
        c.topology_aware = acc.value("topologyAware", false);
        if (acc.contains("network"))
          return std::unexpected(src.error_at(
              cptr + "/resources/acceleration/network", "acceleration.network is not supported",
              "declare the network at the service level: networks: [{name: fast, type: sriov, "
              "resource: "
              "intel.com/intel_sriov_netdevice}] (or type macvlan with master)"));
        if (acc.contains("compute")) c.gpu = acc["compute"].value("gpu", 0);
        if (c.topology_aware) c.limits = {{"cpu", "1"}, {"memory", "500Mi"}};
      }
      if (res.contains("requests")) {
        GEDGE_TRY_ASSIGN(c.requests,
                         resource_list(src, res["requests"], cptr + "/resources/requests"));
      }
      if (res.contains("limits")) {
        GEDGE_TRY_ASSIGN(c.limits, resource_list(src, res["limits"], cptr + "/resources/limits"));
      }
      if (c.gpu == 0 && c.limits.contains("nvidia.com/gpu")) {
        auto g = parse_resource_quantity(json(c.limits["nvidia.com/gpu"]), "nvidia.com/gpu");
        if (!g || *g != std::floor(*g) || *g > 64)
          return std::unexpected(src.error_at(cptr + "/resources/limits/nvidia.com~1gpu",
                                              "expected a whole number of GPUs"));
        c.gpu = static_cast<int>(*g);
      }
      if (c.gpu > 0) c.limits["nvidia.com/gpu"] = std::to_string(c.gpu);
      if (c.accelerated) c.requests = c.limits;  // Guaranteed QoS
      if (c.topology_aware) {
        auto cpu = parse_cpu(c.limits["cpu"]);
        if (!cpu || std::floor(*cpu) != *cpu || *cpu < 1)
          return std::unexpected(src.error_at(
              cptr + "/resources/limits/cpu",
              fmt::format("topologyAware needs a whole number of CPUs, not '{}'", c.limits["cpu"]),
              "the static CPU manager pins only integer CPU requests"));
      }
      GEDGE_TRY(check_requests_le_limits(src, c, cptr + "/resources"));
      if (cj.contains("command")) c.command = cj["command"].get<std::vector<std::string>>();
      if (cj.contains("args")) c.args = cj["args"].get<std::vector<std::string>>();
      if (cj.contains("env"))
        for (const auto& e : cj["env"])
          c.env.push_back({e.at("name").get<std::string>(), e.value("value", ""),
                           e.value("secret", ""), e.value("field", "")});
    }
    if (!cnames.insert(c.name).second)
      return std::unexpected(src.error_at(
          cptr, fmt::format("container name '{}' is used twice", c.name),
          s.form == 1 ? "v1 names containers after the image; use the v2 form with explicit names"
                      : "give each container a distinct name"));
    s.containers.push_back(std::move(c));
  }

  // monitorPorts name Service ports.
  std::set<int> known_ports(s.service_ports.begin(), s.service_ports.end());
  for (const auto& c : s.containers)
    for (const auto& p : c.ports) known_ports.insert(p.container_port);
  for (std::size_t i = 0; i < s.monitor_ports.size(); ++i)
    if (!known_ports.contains(s.monitor_ports[i]))
      return std::unexpected(
          src.error_at(ptr + "/monitorPorts/" + std::to_string(i),
                       fmt::format("port {} is not a port of the service", s.monitor_ports[i])));

  if (body.contains("scheduleHint")) {
    ScheduleHint h;
    h.preferred = body["scheduleHint"].value("preferred", "");
    if (body["scheduleHint"].contains("nodeSelector"))
      h.node_selector = string_map(body["scheduleHint"]["nodeSelector"]);
    s.schedule_hint = h;
  }
  if (body.contains("autoscale")) {
    const json& a = body["autoscale"];
    Autoscale as;
    as.max = a.at("max").get<int>();
    as.min = a.value("min", 1);
    as.cpu = a.value("cpu", 80);
    as.scale_down_window_s = a.value("scaleDownWindow", 300);
    as.scale_up_window_s = a.value("scaleUpWindow", 0);
    if (as.min > as.max)
      return std::unexpected(src.error_at(ptr + "/autoscale/min",
                                          fmt::format("min {} is above max {}", as.min, as.max)));
    if (a.contains("metrics")) {
      if (a.contains("cpu"))
        return std::unexpected(src.error_at(
            ptr + "/autoscale/cpu", "cpu and metrics together: list the CPU target as a metric",
            "metrics: [{type: resource, name: cpu, target: 70}, ...]"));
      std::set<std::pair<std::string, std::string>> seen;
      for (std::size_t i = 0; i < a["metrics"].size(); ++i) {
        const json& m = a["metrics"][i];
        std::string mp = fmt::format("{}/autoscale/metrics/{}", ptr, i);
        AutoscaleMetric am{m.at("type").get<std::string>(), m.at("name").get<std::string>(),
                           gedge::quantity_text(m.at("target"))};
        if (!seen.insert({am.type, am.name}).second)
          return std::unexpected(
              src.error_at(mp, fmt::format("{} metric '{}' is listed twice", am.type, am.name)));
        if (am.type == "resource") {
          if (am.name != "cpu" && am.name != "memory")
            return std::unexpected(src.error_at(
                mp + "/name", fmt::format("resource metric '{}': cpu or memory", am.name)));
          const json& t = m["target"];
          if (!t.is_number_integer() || t.get<long>() < 1 || t.get<long>() > 1000)
            return std::unexpected(src.error_at(
                mp + "/target", "a resource target is a percent of the request (1..1000)"));
        } else {
          auto v = parse_resource_quantity(m["target"], "target");
          if (!v || *v <= 0)
            return std::unexpected(
                src.error_at(mp + "/target", "the target is a positive quantity (30, 500m, 1k)"));
        }
        if (am.type == "resource" && am.name == "cpu")
          as.cpu = m["target"].get<int>();  // the hosts' autoscaler
        as.metrics.push_back(std::move(am));
      }
    }
    if (s.replicas && (*s.replicas < as.min || *s.replicas > as.max))
      return std::unexpected(src.error_at(
          ptr + "/replicas", fmt::format("replicas {} is outside autoscale min {}..max {}",
                                         *s.replicas, as.min, as.max)));
    s.autoscale = as;
  }
  if (body.contains("vpa")) s.vpa_mode = body["vpa"].at("mode").get<std::string>();
  if (body.contains("limits")) {
    std::map<std::string, std::string> mn, mx;
    if (body["limits"].contains("min")) {
      GEDGE_TRY_ASSIGN(mn, resource_list(src, body["limits"]["min"], ptr + "/limits/min"));
    }
    if (body["limits"].contains("max")) {
      GEDGE_TRY_ASSIGN(mx, resource_list(src, body["limits"]["max"], ptr + "/limits/max"));
    }
    for (const auto& [k, v] : mn)
      if (mx.contains(k)) {
        auto lo = k == "cpu" ? parse_cpu_quantity(json(v)) : parse_memory_quantity(json(v));
        auto hi = k == "cpu" ? parse_cpu_quantity(json(mx[k])) : parse_memory_quantity(json(mx[k]));
        if (lo && hi && *lo > *hi)
          return std::unexpected(src.error_at(ptr + "/limits/min/" + k,
                                              fmt::format("min {} is above max {}", v, mx[k])));
      }
    s.limits = std::make_pair(mn, mx);
  }
  s.runtime = body.value("runtime", "");
  if (body.contains("pin")) {
    Pin p;
    p.cores = body["pin"].at("cores").get<int>();
    p.near = body["pin"].value("near", "");
    p.no_smt = body["pin"].value("noSmt", false);
    s.pin = p;
  }
  if (body.contains("volumes")) {
    std::set<std::string> names, paths;
    for (std::size_t i = 0; i < body["volumes"].size(); ++i) {
      const json& v = body["volumes"][i];
      std::string vptr = ptr + "/volumes/" + std::to_string(i);
      Volume vol;
      vol.name = v.at("name").get<std::string>();
      vol.mount_path = v.at("mountPath").get<std::string>();
      vol.read_only = v.value("readOnly", false);
      int sources = 0;
      if (v.contains("claim")) ++sources, vol.claim = v["claim"].get<std::string>();
      if (v.contains("nfs"))
        ++sources, vol.nfs_server = v["nfs"]["server"].get<std::string>(),
                   vol.nfs_path = v["nfs"]["path"].get<std::string>();
      if (v.contains("emptyDir")) {
        ++sources;
        vol.empty_dir = true;
        vol.medium = v["emptyDir"].value("medium", "");
        if (v["emptyDir"].contains("sizeLimit"))
          vol.size_limit = gedge::quantity_text(v["emptyDir"]["sizeLimit"]);
      }
      if (v.contains("hostPath")) ++sources, vol.host_path = v["hostPath"].get<std::string>();
      if (sources != 1)
        return std::unexpected(src.error_at(
            vptr, sources == 0
                      ? "a volume needs a source: claim, nfs, emptyDir or hostPath"
                      : "a volume has exactly one source: claim, nfs, emptyDir or hostPath"));
      for (const char* k : {"size", "accessMode", "storageClass"})
        if (v.contains(k) && vol.claim.empty())
          return std::unexpected(src.error_at(
              vptr + "/" + k, "only a claim volume has a size, accessMode or storageClass"));
      if (v.contains("size")) {
        vol.size = gedge::quantity_text(v["size"]);
        auto q = parse_memory_quantity(v["size"], "size");
        if (!q || *q <= 0)
          return std::unexpected(
              src.error_at(vptr + "/size", fmt::format("invalid size '{}'", vol.size)));
      }
      vol.access_mode = v.value("accessMode", "");
      vol.storage_class = v.value("storageClass", "");
      if (!names.insert(vol.name).second)
        return std::unexpected(
            src.error_at(vptr + "/name", fmt::format("volume name '{}' is used twice", vol.name)));
      if (!paths.insert(vol.mount_path).second)
        return std::unexpected(src.error_at(
            vptr + "/mountPath", fmt::format("two volumes mount at '{}'", vol.mount_path)));
      s.volumes.push_back(std::move(vol));
    }
  }
  if (body.contains("networks")) {
    std::set<std::string> names;
    for (std::size_t i = 0; i < body["networks"].size(); ++i) {
      const json& n = body["networks"][i];
      std::string nptr = ptr + "/networks/" + std::to_string(i);
      Network net;
      net.name = n.at("name").get<std::string>();
      net.type = n.at("type").get<std::string>();
      net.master = n.value("master", "");
      net.subnet = n.value("subnet", "");
      net.resource = n.value("resource", "");
      if ((net.type == "macvlan" || net.type == "ipvlan") && net.master.empty())
        return std::unexpected(src.error_at(
            nptr, fmt::format("a {} network needs master (the host interface)", net.type)));
      if (net.type == "sriov" && net.resource.empty())
        return std::unexpected(src.error_at(
            nptr, "an sriov network needs resource (the device plugin's resource name)",
            "e.g. resource: intel.com/intel_sriov_netdevice"));
      if (net.type != "sriov" && !net.resource.empty())
        return std::unexpected(
            src.error_at(nptr + "/resource", "only an sriov network has a resource"));
      if (!names.insert(net.name).second)
        return std::unexpected(
            src.error_at(nptr + "/name", fmt::format("network name '{}' is used twice", net.name)));
      s.networks.push_back(std::move(net));
    }
  }
  s.resources = body.value("resources", json());
  s.compute_ms = body.value("compute_ms", json());
  s.output_mb = body.value("output_mb", json());
  (void)stage;
  return s;
}

}  // namespace

std::vector<const Service*> Spec::ordered() const {
  std::vector<const Service*> out;
  if (!is_pipeline) {
    out.push_back(&service);
    return out;
  }
  // Kahn's algorithm, ties broken by file order (validated acyclic).
  const auto& st = pipeline.stages;
  std::vector<bool> done(st.size(), false);
  for (std::size_t round = 0; round < st.size(); ++round) {
    for (std::size_t i = 0; i < st.size(); ++i) {
      if (done[i]) continue;
      bool ready = true;
      for (const auto& dep : st[i].after)
        for (std::size_t j = 0; j < st.size(); ++j)
          if (st[j].name == dep && !done[j]) ready = false;
      if (ready) {
        done[i] = true;
        out.push_back(&st[i]);
        break;
      }
    }
  }
  return out;
}

Result<Spec> parse_spec(const std::string& text, const std::string& file,
                        const LoadLimits& limits) {
  GEDGE_TRY_ASSIGN(auto src, detail::parse_source(text, file, limits));
  GEDGE_TRY(detail::validate_schema(src));
  const json& doc = src.doc;
  Spec spec;
  spec.file = file;
  spec.json = doc;
  std::string kind = doc.value("kind", "Service");
  if (kind == "Pipeline") {
    for (const char* k : {"service", "type", "replicas", "labels", "containers", "ports",
                          "monitorPorts", "scheduleHint", "autoscale", "vpa", "limits", "runtime",
                          "pin", "volumes", "networks", "resources", "compute_ms", "output_mb"})
      if (doc.contains(k))
        return std::unexpected(src.error_at(
            std::string("/") + k, "not allowed at the top of a Pipeline; put it in a stage"));
    if (!doc.contains("name"))
      return std::unexpected(src.error_at("", "missing required field 'name'"));
    if (!doc.contains("stages"))
      return std::unexpected(src.error_at("", "missing required field 'stages'"));
    spec.is_pipeline = true;
    Pipeline& p = spec.pipeline;
    p.name = doc["name"].get<std::string>();
    p.namespace_ = doc.value("namespace", "default");
    p.source = doc.value("source", "");
    std::map<std::string, std::size_t> index;
    const json& stages = doc["stages"];
    for (std::size_t i = 0; i < stages.size(); ++i) {
      std::string sptr = "/stages/" + std::to_string(i);
      GEDGE_TRY_ASSIGN(auto s, build_service(src, stages[i], sptr, true));
      s.namespace_ = p.namespace_;
      if (auto it = index.find(s.name); it != index.end())
        return std::unexpected(
            src.error_at(sptr + "/name", fmt::format("duplicate stage name '{}' (first at line {})",
                                                     s.name, p.stages[it->second].line)));
      index[s.name] = i;
      if (stages[i].contains("after"))
        s.after = stages[i]["after"].get<std::vector<std::string>>();
      else if (i > 0)
        s.after = {stages[i - 1]["name"].get<std::string>()};  // chain in file order
      p.stages.push_back(std::move(s));
    }
    for (std::size_t i = 0; i < p.stages.size(); ++i)
      for (std::size_t k = 0; k < p.stages[i].after.size(); ++k) {
        const auto& dep = p.stages[i].after[k];
        std::string aptr = "/stages/" + std::to_string(i) + "/after/" + std::to_string(k);
        if (!index.contains(dep))
          return std::unexpected(src.error_at(aptr, fmt::format("no stage named '{}'", dep)));
        if (dep == p.stages[i].name)
          return std::unexpected(src.error_at(aptr, "a stage cannot come after itself"));
      }
    // Cycle detection (DFS, colours); report the cycle's path.
    std::vector<int> colour(p.stages.size(), 0);
    std::vector<std::string> stack;
    std::function<std::optional<std::pair<std::size_t, std::string>>(std::size_t)> dfs =
        [&](std::size_t u) -> std::optional<std::pair<std::size_t, std::string>> {
      colour[u] = 1;
      stack.push_back(p.stages[u].name);
      for (const auto& dep : p.stages[u].after) {
        std::size_t v = index[dep];
        if (colour[v] == 1) {
          std::string cyc;
          auto it = std::find(stack.begin(), stack.end(), dep);
          for (; it != stack.end(); ++it) cyc += *it + " -> ";
          return std::make_pair(u, cyc + dep);
        }
        if (colour[v] == 0)
          if (auto r = dfs(v)) return r;
      }
      stack.pop_back();
      colour[u] = 2;
      return std::nullopt;
    };
    for (std::size_t i = 0; i < p.stages.size(); ++i)
      if (colour[i] == 0)
        if (auto cyc = dfs(i))
          return std::unexpected(
              src.error_at("/stages/" + std::to_string(cyc->first) + "/after",
                           fmt::format("stages form a cycle: {}", cyc->second),
                           "a pipeline must be acyclic; remove one 'after' edge"));
    return spec;
  }
  if (doc.contains("stages") || doc.contains("source"))
    return std::unexpected(src.error_at(doc.contains("stages") ? "/stages" : "/source",
                                        "only allowed with kind: Pipeline"));
  if (doc.contains("service")) {
    for (auto it = doc.begin(); it != doc.end(); ++it)
      if (it.key() != "service" && it.key() != "kind" && it.key() != "apiVersion")
        return std::unexpected(src.error_at("/" + it.key(),
                                            "cannot be combined with the 'service:' wrapper",
                                            "move it inside 'service:'"));
    GEDGE_TRY_ASSIGN(spec.service, build_service(src, doc["service"], "/service", false));
    return spec;
  }
  if (!doc.contains("name"))
    return std::unexpected(src.error_at("", "missing required field 'name'"));
  if (!doc.contains("containers"))
    return std::unexpected(src.error_at("", "missing required field 'containers'"));
  GEDGE_TRY_ASSIGN(spec.service, build_service(src, doc, "", false));
  return spec;
}

Result<Spec> load_spec(const std::filesystem::path& file, const LoadLimits& limits,
                       bool allow_unknown_kinds) {
  manifest::LoadOptions o;
  o.limits = limits;
  o.allow_unknown_kinds = allow_unknown_kinds;
  GEDGE_TRY_ASSIGN(auto in, manifest::load(file, o));
  if (in.is_gedge) return parse_spec(in.gedge_text, in.gedge_file, limits);
  return spec_from_manifest(std::move(in));
}

Spec spec_from_manifest(manifest::Input in) {
  Spec spec;
  spec.file = in.path;
  spec.is_manifest = true;
  spec.manifest = std::move(in);
  return spec;
}

namespace detail {

Result<Source> parse_source(const std::string& text, const std::string& file,
                            const LoadLimits& limits) {
  GEDGE_TRY_ASSIGN(auto docs, parse_documents(text, file, limits));
  if (docs.empty())
    return fail(ErrorCode::usage, fmt::format("{}: empty document", file),
                "a service file needs at least name and containers");
  if (docs.size() > 1)
    return fail(
        ErrorCode::usage,
        fmt::format("{}:{}: more than one YAML document; put one service or one pipeline in a file",
                    file, docs[1].line));
  if (!docs[0].doc.is_object())
    return fail(ErrorCode::usage,
                fmt::format("{}:{}: the document must be a mapping", file, docs[0].line),
                "a service file starts with 'name:' (or 'service:' or 'kind: Pipeline')");
  return std::move(docs[0]);
}

}  // namespace detail

}  // namespace gedge::svc
