// Linux CPU/node lists ("2-5,8"): the one textual form of a cpuset in gedge's inputs and outputs.
#include <fmt/format.h>

#include <charconv>

#include "gedge/topo.hpp"

namespace gedge::topo {

namespace {
constexpr unsigned kMaxListIndex = 1u << 20;

bool parse_uint(std::string_view s, unsigned& out) {
  if (s.empty() || s.size() > 8) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

Result<IndexSet> parse_list(std::string_view s) {
  IndexSet out;
  auto bad = [&](std::string_view why) {
    return fail(ErrorCode::usage, fmt::format("malformed cpu list '{}': {}", s, why),
                "use OS indexes like '2-5,8' (see 'gedge tune show')");
  };
  if (s.empty()) return out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    std::string_view item =
        s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (item.empty()) return bad("empty item");
    auto dash = item.find('-');
    unsigned lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      if (!parse_uint(item, lo)) return bad(fmt::format("'{}' is not a number", item));
      hi = lo;
    } else {
      if (!parse_uint(item.substr(0, dash), lo) || !parse_uint(item.substr(dash + 1), hi))
        return bad(fmt::format("'{}' is not a range", item));
      if (hi < lo) return bad(fmt::format("range '{}' is reversed", item));
    }
    if (hi >= kMaxListIndex) return bad("index too large");
    for (unsigned i = lo; i <= hi; ++i) out.insert(i);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string format_list(const IndexSet& s) {
  std::string out;
  auto it = s.begin();
  while (it != s.end()) {
    unsigned lo = *it, hi = lo;
    auto next = std::next(it);
    while (next != s.end() && *next == hi + 1) {
      hi = *next;
      ++next;
    }
    if (!out.empty()) out += ',';
    out += hi == lo ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi);
    it = next;
  }
  return out;
}

Result<Policy> parse_policy(std::string_view s) {
  if (s == "compact") return Policy::compact;
  if (s == "scatter") return Policy::scatter;
  return fail(ErrorCode::usage, fmt::format("unknown policy '{}'", s), "use compact or scatter");
}

}  // namespace gedge::topo
