#include "gedge/text.hpp"

namespace gedge {

std::string trim(std::string_view s, std::string_view chars) {
  auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(chars);
  return std::string(s.substr(b, e - b + 1));
}

std::string lower(std::string s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<std::string> split_list(std::string_view s, char sep, std::string_view blanks) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto end = s.find(sep, pos);
    if (end == std::string_view::npos) end = s.size();
    std::string item = trim(s.substr(pos, end - pos), blanks);
    if (!item.empty()) out.push_back(std::move(item));
    pos = end + 1;
  }
  return out;
}

}  // namespace gedge
