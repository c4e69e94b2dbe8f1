// Pure pieces of the build engine: --max-fail parsing and --resume selection.
#include <fmt/format.h>

#include <map>

#include "gedge/cluster.hpp"

namespace gedge::cluster {

Result<MaxFail> parse_max_fail(const std::string& text) {
  MaxFail m;
  std::string s = text;
  if (!s.empty() && s.back() == '%') {
    m.percent = true;
    s.pop_back();
  }
  if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos)
    return fail(ErrorCode::usage, fmt::format("--max-fail '{}': expected N or N%", text));
  m.value = std::stoi(s);
  if (m.percent && m.value > 100)
    return fail(ErrorCode::usage,
                fmt::format("--max-fail '{}': a percentage is at most 100%", text));
  return m;
}

bool MaxFail::exceeded(int failed, int total) const {
  if (value < 0) return false;
  if (!percent) return failed > value;
  if (total <= 0) return false;
  return failed * 100 > value * total;  // more than value% of the devices
}

std::vector<std::string> select_resume(const std::vector<std::string>& members,
                                       const std::vector<JournalEntry>& journal) {
  std::map<std::string, const JournalEntry*> latest;
  for (const auto& e : journal) {
    auto it = latest.find(e.device);
    if (it == latest.end() || e.id > it->second->id) latest[e.device] = &e;
  }
  std::vector<std::string> out;
  for (const auto& m : members) {
    auto it = latest.find(m);
    bool done =
        it != latest.end() && it->second->step == kStepComplete && it->second->status == "ok";
    if (!done) out.push_back(m);
  }
  return out;
}

}  // namespace gedge::cluster
