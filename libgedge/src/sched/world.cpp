// The world model: quantities, the strict --state loader, and link lookups.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "gedge/document.hpp"
#include "gedge/quantity.hpp"
#include "gedge/sched.hpp"
#include "sched_internal.hpp"

namespace gedge::sched {

using nlohmann::json;

namespace {

constexpr double kHuge = 1e12;

std::string key(std::string_view a, std::string_view b) {
  std::string k;
  k.reserve(a.size() + b.size() + 1);
  k.append(a).push_back('\x1f');
  k.append(b);
  return k;
}

Result<double> number_in(const json& v, const std::string& path, bool allow_zero = true) {
  if (!v.is_number())
    return fail(ErrorCode::usage,
                fmt::format("{}: expected a number, got {}", path, v.type_name()));
  double d = v.get<double>();
  if (!std::isfinite(d) || std::fabs(d) > kHuge)
    return fail(ErrorCode::usage, fmt::format("{}: number out of range ({})", path, v.dump()),
                "numbers must be finite and at most 1e12");
  if (d < 0 || (!allow_zero && d == 0))
    return fail(ErrorCode::usage, fmt::format("{}: must be {} (got {})", path,
                                              allow_zero ? "non-negative" : "positive", v.dump()));
  return d;
}

Result<void> only_fields(const json& obj, const std::string& path,
                         std::initializer_list<const char*> allowed) {
  if (!obj.is_object())
    return fail(ErrorCode::usage,
                fmt::format("{}: expected an object, got {}", path, obj.type_name()));
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; });
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(ErrorCode::usage, fmt::format("{}: unknown field '{}'", path, it.key()),
                  fmt::format("allowed fields: {}", list));
    }
  }
  return {};
}

Result<std::string> string_in(const json& obj, const char* field, const std::string& path,
                              bool required) {
  if (!obj.contains(field)) {
    if (required) return fail(ErrorCode::usage, fmt::format("{}: missing field '{}'", path, field));
    return std::string{};
  }
  const json& v = obj.at(field);
  if (!v.is_string() || v.get<std::string>().empty())
    return fail(ErrorCode::usage, fmt::format("{}.{}: expected a non-empty string", path, field));
  return v.get<std::string>();
}

Result<Resources> resources_in(const json& v, const std::string& path) {
  GEDGE_TRY(only_fields(v, path, {"cpu", "memory", "gpu"}));
  Resources r;
  if (v.contains("cpu")) {
    GEDGE_TRY_ASSIGN(r.cpu, parse_cpu_quantity(v.at("cpu"), path + ".cpu"));
  }
  if (v.contains("memory")) {
    GEDGE_TRY_ASSIGN(r.memory, parse_memory_quantity(v.at("memory"), path + ".memory"));
  }
  if (v.contains("gpu")) {
    GEDGE_TRY_ASSIGN(r.gpu, number_in(v.at("gpu"), path + ".gpu"));
  }
  return r;
}

Result<LinkTable> links_in(const json& v, const std::string& path, const char* unit) {
  GEDGE_TRY(only_fields(v, path, {"intra_cluster", "links"}));
  LinkTable t;
  if (v.contains("intra_cluster")) {
    GEDGE_TRY_ASSIGN(t.intra_cluster, number_in(v.at("intra_cluster"), path + ".intra_cluster",
                                                std::string_view(unit) == "ms"));
  }
  if (v.contains("links")) {
    const json& arr = v.at("links");
    if (!arr.is_array())
      return fail(ErrorCode::usage, fmt::format("{}.links: expected an array", path));
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string p = fmt::format("{}.links[{}]", path, i);
      GEDGE_TRY(only_fields(arr[i], p, {"a", "b", unit}));
      Link l;
      GEDGE_TRY_ASSIGN(l.a, string_in(arr[i], "a", p, true));
      GEDGE_TRY_ASSIGN(l.b, string_in(arr[i], "b", p, true));
      if (!arr[i].contains(unit))
        return fail(ErrorCode::usage, fmt::format("{}: missing field '{}'", p, unit));
      GEDGE_TRY_ASSIGN(l.value,
                       number_in(arr[i].at(unit), p + "." + unit, std::string_view(unit) == "ms"));
      if (l.a == l.b)
        return fail(ErrorCode::usage, fmt::format("{}: a link from '{}' to itself", p, l.a));
      t.links.push_back(std::move(l));
    }
  }
  return t;
}

void index_table(LinkTable& t) {
  t.index.clear();
  for (const auto& l : t.links) {
    t.index[key(l.a, l.b)] = l.value;
    t.index[key(l.b, l.a)] = l.value;
  }
}

// "c/n" -> {"c/n", "c"}; anything else -> {x}. Most specific first.
std::vector<std::string_view> expand(std::string_view e) {
  auto slash = e.find('/');
  if (slash == std::string_view::npos) return {e};
  return {e, e.substr(0, slash)};
}

std::optional<double> lookup(const LinkTable& t, std::string_view from, std::string_view to) {
  if (from == to) return std::nullopt;  // callers handle "same node" themselves
  auto fs = expand(from), ts = expand(to);
  // Pairs by specificity: (node,node), (node,cluster), (cluster,node), (cluster,cluster).
  for (std::size_t sum = 0; sum <= 2; ++sum)
    for (std::size_t i = 0; i < fs.size(); ++i) {
      std::size_t j = sum - i;
      if (sum < i || j >= ts.size()) continue;
      if (fs[i] == ts[j]) continue;
      auto it = t.index.find(key(fs[i], ts[j]));
      if (it != t.index.end()) return it->second;
    }
  return std::nullopt;
}

std::string_view cluster_of(std::string_view e) {
  auto slash = e.find('/');
  return slash == std::string_view::npos ? std::string_view{} : e.substr(0, slash);
}

}  // namespace

Result<double> parse_cpu(const json& v) {
  return parse_cpu_quantity(v, "cpu");
}

Result<double> parse_memory(const json& v) {
  return parse_memory_quantity(v, "memory");
}

void finalize(World& w) {
  std::sort(w.clusters.begin(), w.clusters.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (auto& c : w.clusters)
    std::sort(c.nodes.begin(), c.nodes.end(), [](auto& a, auto& b) { return a.name < b.name; });
  index_table(w.latency);
  if (w.bandwidth) index_table(*w.bandwidth);
  const std::size_t C = w.clusters.size();
  w.cluster_latency.assign(C * C, std::nan(""));
  w.cluster_bandwidth.assign(C * C, 0.0);
  for (std::size_t a = 0; a < C; ++a)
    for (std::size_t b = 0; b < C; ++b) {
      if (a == b) {
        if (w.latency.intra_cluster) w.cluster_latency[a * C + b] = *w.latency.intra_cluster;
        if (w.bandwidth && w.bandwidth->intra_cluster)
          w.cluster_bandwidth[a * C + b] = *w.bandwidth->intra_cluster;
        continue;
      }
      if (auto l = lookup(w.latency, w.clusters[a].name, w.clusters[b].name))
        w.cluster_latency[a * C + b] = *l;
      if (w.bandwidth)
        if (auto l = lookup(*w.bandwidth, w.clusters[a].name, w.clusters[b].name))
          w.cluster_bandwidth[a * C + b] = *l;
    }
  std::set<std::string> clusters;
  for (const auto& c : w.clusters) clusters.insert(c.name);
  auto is_place = [&](const std::string& e) {
    return e.find('/') != std::string::npos || clusters.contains(e);
  };
  w.node_endpoints.clear();
  auto mark = [&](const LinkTable& t) {
    for (const auto& l : t.links) {
      bool place_link = is_place(l.a) && is_place(l.b);
      for (const auto& e : {l.a, l.b})
        if (e.find('/') != std::string::npos) {
          char& v = w.node_endpoints[e];
          v = std::max<char>(v, place_link ? 2 : 1);
        }
    }
  };
  mark(w.latency);
  if (w.bandwidth) mark(*w.bandwidth);
}

Result<World> parse_state(std::string_view text, std::string_view origin) {
  GEDGE_TRY_ASSIGN(json j, parse_json_strict(text, std::string(origin)));
  std::string root(origin);
  GEDGE_TRY(only_fields(j, root, {"$schema", "clusters", "latency_ms", "bandwidth_mbps"}));
  World w;
  if (!j.contains("clusters") || !j.at("clusters").is_array())
    return fail(ErrorCode::usage, fmt::format("{}: 'clusters' must be an array", root));
  std::set<std::string> cluster_names, node_ids;
  const json& cs = j.at("clusters");
  for (std::size_t i = 0; i < cs.size(); ++i) {
    std::string p = fmt::format("{}: clusters[{}]", root, i);
    GEDGE_TRY(only_fields(cs[i], p, {"name", "tier", "nodes"}));
    Cluster c;
    GEDGE_TRY_ASSIGN(c.name, string_in(cs[i], "name", p, true));
    if (c.name.find('/') != std::string::npos)
      return fail(ErrorCode::usage,
                  fmt::format("{}.name: '/' is not allowed in a cluster name", p));
    if (!cluster_names.insert(c.name).second)
      return fail(ErrorCode::usage, fmt::format("{}.name: duplicate cluster '{}'", p, c.name));
    GEDGE_TRY_ASSIGN(c.tier, string_in(cs[i], "tier", p, false));
    if (!c.tier.empty() && c.tier != "local" && c.tier != "neighbor" && c.tier != "cloud")
      return fail(ErrorCode::usage,
                  fmt::format("{}.tier: '{}' is not local, neighbor or cloud", p, c.tier));
    if (!cs[i].contains("nodes") || !cs[i].at("nodes").is_array())
      return fail(ErrorCode::usage, fmt::format("{}: 'nodes' must be an array", p));
    const json& ns = cs[i].at("nodes");
    for (std::size_t k = 0; k < ns.size(); ++k) {
      std::string np = fmt::format("{}.nodes[{}]", p, k);
      GEDGE_TRY(
          only_fields(ns[k], np, {"name", "ready", "labels", "taints", "capacity", "allocated"}));
      Node n;
      GEDGE_TRY_ASSIGN(n.name, string_in(ns[k], "name", np, true));
      if (n.name.find('/') != std::string::npos)
        return fail(ErrorCode::usage,
                    fmt::format("{}.name: '/' is not allowed in a node name", np));
      if (!node_ids.insert(c.name + "/" + n.name).second)
        return fail(ErrorCode::usage, fmt::format("{}.name: duplicate node '{}'", np, n.name));
      if (ns[k].contains("ready")) {
        if (!ns[k].at("ready").is_boolean())
          return fail(ErrorCode::usage, fmt::format("{}.ready: expected true or false", np));
        n.ready = ns[k].at("ready").get<bool>();
      }
      if (ns[k].contains("labels")) {
        const json& ls = ns[k].at("labels");
        if (!ls.is_object())
          return fail(ErrorCode::usage, fmt::format("{}.labels: expected an object", np));
        for (auto it = ls.begin(); it != ls.end(); ++it) {
          if (!it.value().is_string())
            return fail(ErrorCode::usage,
                        fmt::format("{}.labels.{}: expected a string", np, it.key()));
          n.labels[it.key()] = it.value().get<std::string>();
        }
      }
      if (ns[k].contains("taints")) {
        const json& ts = ns[k].at("taints");
        if (!ts.is_array())
          return fail(ErrorCode::usage, fmt::format("{}.taints: expected an array", np));
        for (std::size_t t = 0; t < ts.size(); ++t) {
          std::string tp = fmt::format("{}.taints[{}]", np, t);
          GEDGE_TRY(only_fields(ts[t], tp, {"key", "value", "effect"}));
          Taint taint;
          GEDGE_TRY_ASSIGN(taint.key, string_in(ts[t], "key", tp, true));
          if (ts[t].contains("value")) {
            if (!ts[t].at("value").is_string())
              return fail(ErrorCode::usage, fmt::format("{}.value: expected a string", tp));
            taint.value = ts[t].at("value").get<std::string>();
          }
          GEDGE_TRY_ASSIGN(taint.effect, string_in(ts[t], "effect", tp, true));
          if (taint.effect != "NoSchedule" && taint.effect != "PreferNoSchedule" &&
              taint.effect != "NoExecute")
            return fail(
                ErrorCode::usage,
                fmt::format("{}.effect: '{}' is not NoSchedule, PreferNoSchedule or NoExecute", tp,
                            taint.effect));
          n.taints.push_back(std::move(taint));
        }
      }
      if (!ns[k].contains("capacity"))
        return fail(ErrorCode::usage, fmt::format("{}: missing field 'capacity'", np));
      GEDGE_TRY_ASSIGN(n.capacity, resources_in(ns[k].at("capacity"), np + ".capacity"));
      if (ns[k].contains("allocated")) {
        GEDGE_TRY_ASSIGN(n.allocated, resources_in(ns[k].at("allocated"), np + ".allocated"));
      }
      c.nodes.push_back(std::move(n));
    }
    w.clusters.push_back(std::move(c));
  }
  if (!j.contains("latency_ms"))
    return fail(ErrorCode::usage, fmt::format("{}: missing field 'latency_ms'", root),
                "give at least {\"intra_cluster\": MS, \"links\": [...]}");
  GEDGE_TRY_ASSIGN(w.latency, links_in(j.at("latency_ms"), root + ": latency_ms", "ms"));
  if (j.contains("bandwidth_mbps")) {
    GEDGE_TRY_ASSIGN(w.bandwidth,
                     links_in(j.at("bandwidth_mbps"), root + ": bandwidth_mbps", "mbps"));
  }
  // A "c/n" endpoint must name a known node ("c" alone may be a cluster or a device).
  auto check = [&](const LinkTable& t, const char* what) -> Result<void> {
    for (std::size_t i = 0; i < t.links.size(); ++i)
      for (const auto& e : {t.links[i].a, t.links[i].b})
        if (e.find('/') != std::string::npos && !node_ids.contains(e))
          return fail(ErrorCode::usage,
                      fmt::format("{}: {}.links[{}]: unknown node '{}'", root, what, i, e),
                      "a link endpoint is a device, a cluster, or cluster/node");
    return {};
  };
  GEDGE_TRY(check(w.latency, "latency_ms"));
  if (w.bandwidth) GEDGE_TRY(check(*w.bandwidth, "bandwidth_mbps"));
  finalize(w);
  return w;
}

std::optional<double> latency_ms(const World& w, std::string_view from, std::string_view to) {
  if (from == to) return 0.0;
  if (auto v = lookup(w.latency, from, to)) return v;
  auto cf = cluster_of(from), ct = cluster_of(to);
  if (!cf.empty() && cf == ct) return w.latency.intra_cluster;
  return std::nullopt;
}

std::optional<double> bandwidth_mbps(const World& w, std::string_view from, std::string_view to) {
  if (!w.bandwidth) return std::nullopt;
  if (auto v = lookup(*w.bandwidth, from, to)) return v;
  auto cf = cluster_of(from), ct = cluster_of(to);
  if (!cf.empty() && cf == ct) return w.bandwidth->intra_cluster;
  return std::nullopt;
}

}  // namespace gedge::sched
