// Requests from flags: one path for `sched place`, `sched submit` and the queue (a queued request
// keeps its flags as options and is built again with build_request when a run takes it).
#include <fmt/format.h>

#include <cmath>

#include "gedge/document.hpp"
#include "gedge/sched.hpp"

namespace gedge::sched {

using nlohmann::json;

Result<Weights> parse_weights(std::string_view s) {
  Weights w;
  if (s.empty()) return w;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    std::string item(s.substr(pos, comma == std::string_view::npos ? s.npos : comma - pos));
    auto eq = item.find('=');
    double v = 0;
    bool ok = eq != std::string::npos;
    if (ok) {
      try {
        std::size_t used = 0;
        v = std::stod(item.substr(eq + 1), &used);
        ok = used == item.size() - eq - 1 && std::isfinite(v) && v >= 0 && v <= 1e6;
      } catch (...) {
        ok = false;
      }
    }
    std::string k = ok ? item.substr(0, eq) : "";
    if (k == "cpu")
      w.cpu = v;
    else if (k == "memory")
      w.memory = v;
    else if (k == "gpu")
      w.gpu = v;
    else
      return fail(ErrorCode::usage, fmt::format("malformed --weights item '{}'", item),
                  "example: --weights cpu=1,memory=1,gpu=200");
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return w;
}

Result<Request> build_request(const RequestFlags& f) {
  Request r;
  GEDGE_TRY_ASSIGN(r.policy, parse_policy(f.policy));
  GEDGE_TRY_ASSIGN(r.rank, parse_policy(f.rank));
  if (r.rank != Policy::low_latency && r.rank != Policy::least_allocated &&
      r.rank != Policy::most_allocated)
    return fail(ErrorCode::usage, fmt::format("--rank {} cannot rank clusters", f.rank),
                "use low-latency, least-allocated or most-allocated");
  r.source = f.from;
  if (!f.clusters.empty()) {
    GEDGE_TRY_ASSIGN(r.levels, parse_levels(f.clusters));
  }
  r.node = f.node;
  GEDGE_TRY_ASSIGN(r.weights, parse_weights(f.weights));
  r.explain = f.explain;
  r.top_k = f.top;
  if (r.policy == Policy::node && r.node.empty())
    return fail(ErrorCode::usage, "--policy node needs --node CLUSTER/NODE");
  if (r.policy != Policy::node && !r.node.empty())
    return fail(ErrorCode::usage, "--node goes with --policy node");
  if (r.policy == Policy::pipeline && !r.levels.empty())
    return fail(ErrorCode::usage, "--clusters does not apply to --policy pipeline",
                "restrict the world with --state, or use select-clusters");
  return r;
}

void fill_from(RequestFlags& f, const GschRequest& g, bool policy_given) {
  if (!policy_given && !g.policy.empty()) f.policy = g.policy;
  if (f.clusters.empty()) f.clusters = g.clusters;
  if (f.from.empty()) f.from = g.from;
  if (f.node.empty()) f.node = g.node;
}

Result<json> request_options(const RequestFlags& f) {
  json o = {{"policy", f.policy}, {"rank", f.rank}};
  if (!f.from.empty()) o["from"] = f.from;
  if (!f.clusters.empty()) o["clusters"] = f.clusters;
  if (!f.node.empty()) o["node"] = f.node;
  if (!f.weights.empty()) {
    GEDGE_TRY_ASSIGN(auto w, parse_weights(f.weights));
    o["weights"] = {{"cpu", w.cpu}, {"memory", w.memory}, {"gpu", w.gpu}};
  }
  return o;
}

RequestFlags flags_from_options(const json& o) {
  RequestFlags f;
  auto text = [&](const char* key, std::string& into) {
    if (o.contains(key) && o[key].is_string()) into = o[key].get<std::string>();
  };
  text("policy", f.policy);
  text("rank", f.rank);
  text("from", f.from);
  text("clusters", f.clusters);
  text("node", f.node);
  if (o.contains("weights") && o["weights"].is_object()) {
    const json& w = o["weights"];
    Weights d;
    // {} prints the shortest text that reads back as the same double.
    f.weights = fmt::format("cpu={},memory={},gpu={}", w.value("cpu", d.cpu),
                            w.value("memory", d.memory), w.value("gpu", d.gpu));
  }
  return f;
}

Result<manifest::Input> load_input(const std::string& file, bool allow_unknown_kinds,
                                   const std::string& request_file, bool policy_given,
                                   RequestFlags& f) {
  manifest::LoadOptions lo;
  lo.allow_unknown_kinds = allow_unknown_kinds;
  GEDGE_TRY_ASSIGN(auto in, manifest::load(file, lo));
  std::optional<GschRequest> g;
  if (!request_file.empty()) {
    GEDGE_TRY_ASSIGN(auto text, read_input_file(request_file, 1 << 20, "request file"));
    GEDGE_TRY_ASSIGN(auto j, parse_json_strict(text, request_file));
    GEDGE_TRY_ASSIGN(g, gs_request(j, request_file));
  } else if (!policy_given) {
    GEDGE_TRY_ASSIGN(g, gsch_request(in));
  }
  if (g) fill_from(f, *g, policy_given);
  return in;
}

Result<World> read_state(const std::string& path) {
  // A regular file of bounded size: /dev/zero grew memory without end, a FIFO hung.
  GEDGE_TRY_ASSIGN(auto text, read_input_file(path, 16u << 20, "state file"));
  return parse_state(text, path);
}

}  // namespace gedge::sched
