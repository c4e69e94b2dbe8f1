// Inventory files for `device import`: Ansible INI and YAML inventories and ssh_config Host
// blocks, parsed into hosts with their groups (":children" expanded) and effective variables.
// Pure: text in, hosts out; every error names FILE:LINE.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "gedge/device_import.hpp"
#include "gedge/document.hpp"
#include "gedge/text.hpp"

namespace gedge {

namespace {

struct Var {
  std::string value;
  int line = 0;
};

struct Group {
  std::map<std::string, Var> vars;
  std::vector<std::string> children;
  int line = 0;
};

struct RawHost {
  std::map<std::string, Var> vars;
  std::vector<std::string> groups;  // direct groups
  int line = 0;
};

// The model both Ansible formats fill in, turned into ImportHosts the same way.
struct Model {
  std::string file;
  std::map<std::string, Group> groups;
  std::map<std::string, RawHost> hosts;
  std::vector<std::string> order;  // hosts in first-seen order

  RawHost& host(const std::string& name, int line) {
    auto [it, fresh] = hosts.try_emplace(name);
    if (fresh) {
      it->second.line = line;
      order.push_back(name);
    }
    return it->second;
  }
};

Error at(const std::string& file, int line, const std::string& what, const std::string& hint = "") {
  return Error{ErrorCode::usage, fmt::format("{}:{}: {}", file, line, what), hint};
}

bool valid_device_name(const std::string& n) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  return std::regex_match(n, re);
}

bool valid_group_name(const std::string& n) {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}");
  return std::regex_match(n, re);
}

// Splits a host line like Python's shlex (quotes, backslash escapes, '#' comments), which is
// what Ansible's INI parser uses. nullopt on an unterminated quote.
std::optional<std::vector<std::string>> shlex_split(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        cur += line[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '#' && !in_word) break;
    if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
    } else {
      cur += c;
    }
  }
  if (quote) return std::nullopt;
  if (in_word) out.push_back(cur);
  return out;
}

// Variables that are secrets: never stored, reported by device_import.
bool secret_var(const std::string& k) {
  return k == "ansible_password" || k == "ansible_ssh_pass" || k == "ansible_ssh_password" ||
         k == "ansible_become_password" || k == "ansible_become_pass" || k == "ansible_sudo_pass" ||
         k == "ansible_ssh_private_key_passphrase";
}

// "name" or "name:port"; ranges are refused.
Result<std::pair<std::string, int>> host_pattern(const std::string& file, int line,
                                                 const std::string& word) {
  if (word.find('[') != std::string::npos)
    return std::unexpected(at(file, line, fmt::format("host range '{}' is not supported", word),
                              "list the hosts one per line"));
  std::string name = word;
  int port = 0;
  if (auto c = word.rfind(':');
      c != std::string::npos && std::count(word.begin(), word.end(), ':') == 1) {
    name = word.substr(0, c);
    std::string p = word.substr(c + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(p) < 1 || std::stoi(p) > 65535)
      return std::unexpected(
          at(file, line, fmt::format("host '{}': the port is not in 1..65535", word)));
    port = std::stoi(p);
  }
  if (!valid_device_name(name))
    return std::unexpected(
        at(file, line, fmt::format("host name '{}' is not a valid device name", name),
           "use letters, digits, '.', '_' and '-', starting with a letter or digit (set "
           "ansible_host for the address)"));
  return std::pair{name, port};
}

Result<int> port_value(const std::string& file, const Var& v) {
  if (v.value.empty() || v.value.size() > 5 ||
      v.value.find_first_not_of("0123456789") != std::string::npos || std::stoi(v.value) < 1 ||
      std::stoi(v.value) > 65535)
    return std::unexpected(
        at(file, v.line, fmt::format("ansible_port '{}' is not a port (1..65535)", v.value)));
  return std::stoi(v.value);
}

// Groups of every host with ancestors, variables applied by depth (all, then parents before
// children, then the host's own), the connection variables taken out, the rest kept as labels.
Result<std::vector<ImportHost>> finish(Model& m) {
  // parents of each group, and cycle detection
  std::map<std::string, std::vector<std::string>> parents;
  for (auto& [g, grp] : m.groups)
    for (const auto& c : grp.children) {
      parents[c].push_back(g);
      m.groups.try_emplace(c);
    }
  std::map<std::string, int> depth;  // longest path from a root
  std::function<Result<int>(const std::string&, std::set<std::string>&)> depth_of =
      [&](const std::string& g, std::set<std::string>& path) -> Result<int> {
    if (auto it = depth.find(g); it != depth.end()) return it->second;
    if (!path.insert(g).second)
      return std::unexpected(
          at(m.file, m.groups[g].line, fmt::format("group '{}' is its own ancestor", g)));
    int d = g == "all" ? 0 : 1;
    for (const auto& p : parents[g]) {
      GEDGE_TRY_ASSIGN(int pd, depth_of(p, path));
      d = std::max(d, pd + 1);
    }
    path.erase(g);
    depth[g] = d;
    return d;
  };
  std::vector<std::string> names;
  for (const auto& kv : m.groups) names.push_back(kv.first);
  for (const auto& g : names) {  // every group, so a cycle is found even with no host in it
    std::set<std::string> path;
    GEDGE_TRY(depth_of(g, path));
  }
  std::vector<ImportHost> out;
  for (const auto& name : m.order) {
    const RawHost& rh = m.hosts.at(name);
    std::set<std::string> all_groups;
    std::vector<std::string> todo = rh.groups;
    while (!todo.empty()) {
      std::string g = todo.back();
      todo.pop_back();
      if (!all_groups.insert(g).second) continue;
      for (const auto& p : parents[g]) todo.push_back(p);
    }
    all_groups.erase("all");
    std::vector<std::pair<int, std::string>> ordered;
    for (const auto& g : all_groups) {
      std::set<std::string> path;
      GEDGE_TRY_ASSIGN(int d, depth_of(g, path));
      ordered.push_back({d, g});
    }
    std::sort(ordered.begin(), ordered.end());
    std::map<std::string, Var> vars;
    if (auto it = m.groups.find("all"); it != m.groups.end())
      for (const auto& [k, v] : it->second.vars) vars[k] = v;
    for (const auto& [d, g] : ordered)
      for (const auto& [k, v] : m.groups[g].vars) vars[k] = v;
    for (const auto& [k, v] : rh.vars) vars[k] = v;

    ImportHost h;
    h.name = name;
    h.host = name;
    h.file = m.file;
    h.line = rh.line;
    for (const auto& [d, g] : ordered) h.groups.push_back(g);
    std::sort(h.groups.begin(), h.groups.end());
    for (const auto& [k, v] : vars) {
      if (k == "ansible_host" || k == "ansible_ssh_host") {
        if (v.value.empty() || v.value[0] == '-' ||
            v.value.find_first_of(" \t/,@") != std::string::npos)
          return std::unexpected(
              at(m.file, v.line, fmt::format("{} '{}' is not a host address", k, v.value)));
        h.host = v.value;
      } else if (k == "ansible_port" || k == "ansible_ssh_port") {
        GEDGE_TRY_ASSIGN(h.port, port_value(m.file, v));
      } else if (k == "ansible_user" || k == "ansible_ssh_user") {
        if (v.value.empty() || v.value[0] == '-' ||
            v.value.find_first_of(" \t/:@,") != std::string::npos)
          return std::unexpected(
              at(m.file, v.line, fmt::format("{} '{}' is not a user name", k, v.value)));
        h.user = v.value;
      } else if (k == "ansible_ssh_private_key_file" || k == "ansible_private_key_file") {
        h.identity = v.value;
      } else if (secret_var(k)) {
        h.labels.erase(k);  // never stored (device_import says so)
        h.secrets.push_back(k);
      } else {
        h.labels[k] = v.value;
      }
    }
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace

Result<std::vector<ImportHost>> parse_ansible_ini(std::string_view text, const std::string& file) {
  GEDGE_TRY(check_text(text, file));
  Model m;
  m.file = file;
  enum class Kind { hosts, vars, children } kind = Kind::hosts;
  std::string group = "ungrouped";
  std::istringstream in{std::string(text)};
  std::string raw;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']')
        return std::unexpected(at(file, n, fmt::format("malformed section '{}'", line),
                                  "use [group], [group:vars] or [group:children]"));
      std::string sec = line.substr(1, line.size() - 2);
      kind = Kind::hosts;
      if (auto c = sec.find(':'); c != std::string::npos) {
        std::string suffix = sec.substr(c + 1);
        sec = sec.substr(0, c);
        if (suffix == "vars")
          kind = Kind::vars;
        else if (suffix == "children")
          kind = Kind::children;
        else
          return std::unexpected(at(file, n, fmt::format("unknown section kind ':{}'", suffix),
                                    "use :vars or :children"));
      }
      if (!valid_group_name(sec))
        return std::unexpected(at(file, n, fmt::format("invalid group name '{}'", sec)));
      group = sec;
      auto& g = m.groups[group];
      if (!g.line) g.line = n;
      continue;
    }
    if (kind == Kind::vars) {
      auto eq = line.find('=');
      if (eq == std::string::npos)
        return std::unexpected(
            at(file, n, fmt::format("expected KEY=VALUE in [{}:vars], got '{}'", group, line)));
      std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
      if (k.empty() || k.find_first_of(" \t") != std::string::npos)
        return std::unexpected(at(file, n, fmt::format("malformed variable name '{}'", k)));
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
      m.groups[group].vars[k] = Var{v, n};
      continue;
    }
    auto words = shlex_split(line);
    if (!words) return std::unexpected(at(file, n, "unterminated quote"));
    if (words->empty()) continue;
    if (kind == Kind::children) {
      if (words->size() != 1 || !valid_group_name(words->front()))
        return std::unexpected(
            at(file, n,
               fmt::format("expected one group name in [{}:children], got '{}'", group, line)));
      m.groups[group].children.push_back(words->front());
      auto& child = m.groups[words->front()];
      if (!child.line) child.line = n;
      continue;
    }
    GEDGE_TRY_ASSIGN(auto pat, host_pattern(file, n, words->front()));
    auto& h = m.host(pat.first, n);
    if (pat.second)
      h.vars["ansible_port"] =
          Var{std::to_string(pat.second), n};  // a host variable, as in Ansible
    if (std::find(h.groups.begin(), h.groups.end(), group) == h.groups.end())
      h.groups.push_back(group);
    for (size_t i = 1; i < words->size(); ++i) {
      const auto& w = (*words)[i];
      auto eq = w.find('=');
      if (eq == std::string::npos || eq == 0)
        return std::unexpected(
            at(file, n, fmt::format("expected KEY=VALUE after host '{}', got '{}'", pat.first, w)));
      h.vars[w.substr(0, eq)] = Var{w.substr(eq + 1), n};
    }
  }
  return finish(m);
}

Result<std::vector<ImportHost>> parse_ansible_yaml(const std::string& text,
                                                   const std::string& file) {
  DocumentLimits lim;
  lim.max_bytes = 64u << 20;
  lim.max_nodes = 2000000;
  GEDGE_TRY_ASSIGN(auto doc, parse_document(text, file, lim));
  Model m;
  m.file = file;
  auto scalar = [](const nlohmann::json& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number()) return v.dump();
    return std::nullopt;
  };
  auto vars_of = [&](const nlohmann::json& v, const std::string& ptr,
                     std::map<std::string, Var>& into) -> Result<void> {
    if (v.is_null()) return {};
    if (!v.is_object())
      return std::unexpected(doc.error_at(ptr, "expected a mapping of variables"));
    for (auto it = v.begin(); it != v.end(); ++it) {
      auto s = scalar(it.value());
      std::string p = ptr + "/" + it.key();
      if (!s)
        return std::unexpected(
            doc.error_at(p, "only scalar variables can be imported (kept as labels)"));
      into[it.key()] = Var{*s, doc.line_of(p)};
    }
    return {};
  };
  std::function<Result<void>(const std::string&, const nlohmann::json&, const std::string&)>
      group_fn = [&](const std::string& name, const nlohmann::json& g,
                     const std::string& ptr) -> Result<void> {
    if (!valid_group_name(name))
      return std::unexpected(doc.error_at(ptr, fmt::format("invalid group name '{}'", name)));
    auto& grp = m.groups[name];
    if (!grp.line) grp.line = doc.line_of(ptr);
    if (g.is_null()) return {};
    if (!g.is_object())
      return std::unexpected(doc.error_at(ptr, "expected a group mapping (hosts, vars, children)"));
    for (auto it = g.begin(); it != g.end(); ++it)
      if (it.key() != "hosts" && it.key() != "vars" && it.key() != "children")
        return std::unexpected(doc.error_at(ptr + "/" + it.key(),
                                            fmt::format("unknown group key '{}'", it.key()),
                                            "a group has hosts, vars and children"));
    if (g.contains("vars")) GEDGE_TRY(vars_of(g["vars"], ptr + "/vars", grp.vars));
    if (g.contains("hosts") && !g["hosts"].is_null()) {
      if (!g["hosts"].is_object())
        return std::unexpected(doc.error_at(ptr + "/hosts", "expected a mapping of hosts"));
      for (auto it = g["hosts"].begin(); it != g["hosts"].end(); ++it) {
        std::string hp = ptr + "/hosts/" + it.key();
        int line = doc.line_of(hp);
        GEDGE_TRY_ASSIGN(auto pat, host_pattern(file, line, it.key()));
        auto& h = m.host(pat.first, line);
        if (pat.second) h.vars["ansible_port"] = Var{std::to_string(pat.second), line};
        if (std::find(h.groups.begin(), h.groups.end(), name) == h.groups.end())
          h.groups.push_back(name);
        GEDGE_TRY(vars_of(it.value(), hp, h.vars));
      }
    }
    if (g.contains("children") && !g["children"].is_null()) {
      if (!g["children"].is_object())
        return std::unexpected(
            doc.error_at(ptr + "/children", "expected a mapping of child groups"));
      for (auto it = g["children"].begin(); it != g["children"].end(); ++it) {
        m.groups[name].children.push_back(it.key());
        GEDGE_TRY(group_fn(it.key(), it.value(), ptr + "/children/" + it.key()));
      }
    }
    return {};
  };
  if (!doc.doc.is_object())
    return std::unexpected(doc.error_at("", "expected a mapping of groups (all: ...)"));
  for (auto it = doc.doc.begin(); it != doc.doc.end(); ++it)
    GEDGE_TRY(group_fn(it.key(), it.value(), "/" + it.key()));
  // Hosts directly under `all` are ungrouped in Ansible's sense; they keep no group.
  for (auto& [n, h] : m.hosts) std::erase(h.groups, std::string("all"));
  return finish(m);
}

Result<std::vector<ImportHost>> parse_ssh_config_hosts(std::string_view text,
                                                       const std::string& file) {
  GEDGE_TRY(check_text(text, file));
  std::vector<ImportHost> out;
  std::set<std::string> seen;
  std::istringstream in{std::string(text)};
  std::string raw;
  int n = 0;
  while (std::getline(in, raw)) {
    ++n;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto words = shlex_split(line);
    if (!words) return std::unexpected(at(file, n, "unterminated quote"));
    if (words->empty()) continue;
    std::string kw = words->front();
    std::string value;
    if (auto eq = kw.find('='); eq != std::string::npos) {
      value = kw.substr(eq + 1);
      kw = kw.substr(0, eq);
    }
    std::transform(kw.begin(), kw.end(), kw.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (kw != "host") continue;
    std::vector<std::string> pats;
    if (!value.empty()) pats.push_back(value);
    pats.insert(pats.end(), words->begin() + 1, words->end());
    if (pats.empty()) return std::unexpected(at(file, n, "Host without a pattern"));
    for (const auto& p : pats) {
      if (p.find_first_of("*?!") != std::string::npos)
        continue;  // wildcards configure, they name no host
      if (!valid_device_name(p))
        return std::unexpected(at(file, n, fmt::format("Host '{}' is not a valid device name", p),
                                  "use letters, digits, '.', '_' and '-'"));
      if (!seen.insert(p).second) continue;
      ImportHost h;
      h.name = p;
      h.host = p;
      h.file = file;
      h.line = n;
      out.push_back(std::move(h));
    }
  }
  return out;
}

}  // namespace gedge
