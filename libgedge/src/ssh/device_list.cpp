// device ls and show, and selecting devices by tier, groups and labels.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "device_detail.hpp"
#include "gedge/device.hpp"
#include "gedge/keys.hpp"
#include "gedge/known_hosts.hpp"
#include "gedge/openssh.hpp"

namespace gedge {

using namespace detail;

bool in_groups(const nlohmann::json& groups, const std::vector<std::string>& want) {
  for (const auto& g : want)
    if (!groups.is_array() || std::find(groups.begin(), groups.end(), g) == groups.end())
      return false;
  return true;
}

bool labels_match(const nlohmann::json& labels,
                  const std::vector<std::pair<std::string, std::string>>& want) {
  for (const auto& [k, v] : want) {
    if (!labels.is_object() || !labels.contains(k)) return false;
    const auto& got = labels[k];
    if (!got.is_string() || got.get<std::string>() != v) return false;
  }
  return true;
}

namespace {

// The selector's tier, groups and labels as a WHERE clause over `devices` with bound parameters,
// so SQLite skips the rows that do not match before gedge parses anything. The rules are
// labels_match's and in_groups's: a label matches a string value equal to it, a group a string
// element of the groups array, and a column that is not valid JSON matches nothing.
std::string selector_where(const DeviceSelector& sel, std::vector<SqlValue>& params) {
  std::string where;
  auto add = [&where](std::string_view cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (!sel.tier.empty()) {
    add("tier = ?");
    params.emplace_back(sel.tier);
  }
  for (const auto& g : sel.groups) {
    add("CASE WHEN json_valid(groups) AND json_type(groups) = 'array' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.groups) WHERE type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(g);
  }
  for (const auto& [k, v] : sel.labels) {
    add("CASE WHEN json_valid(labels) AND json_type(labels) = 'object' THEN EXISTS (SELECT 1 FROM "
        "json_each(devices.labels) WHERE key = ? AND type = 'text' AND value = ?) ELSE 0 END");
    params.emplace_back(k);
    params.emplace_back(v);
  }
  return where;
}

// The rows (columns `cols`) a selector other than names picks, by name: usage when it selects
// nothing, not_found when it matches no device (unless --all).
Result<std::vector<SqlRow>> query_selected(Inventory& inv, const DeviceSelector& sel,
                                           std::string_view cols) {
  if (!sel.all && sel.labels.empty() && sel.tier.empty() && sel.groups.empty())
    return fail(ErrorCode::usage, "no devices selected",
                "name devices, or use --all, --group NAME or --label k=v");
  std::vector<SqlValue> params;
  std::string where = selector_where(sel, params);
  GEDGE_TRY_ASSIGN(
      auto rows,
      inv.query(fmt::format("SELECT {} FROM devices{} ORDER BY name", cols, where), params));
  if (rows.empty() && !sel.all)
    return fail(ErrorCode::not_found, "no registered device matches the selection",
                "see 'gedge device ls'");
  return rows;
}

}  // namespace

Result<std::vector<SqlRow>> detail::select_device_rows(Inventory& inv, const DeviceSelector& sel) {
  if (sel.names.empty()) return query_selected(inv, sel, "*");
  // One query for every named device (not one per name), then in the order given.
  std::string names =
      nlohmann::json(sel.names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT * FROM devices WHERE name IN "
                                        "(SELECT value FROM json_each(?))",
                                        {names}));
  std::map<std::string, std::size_t, std::less<>> at;
  for (std::size_t i = 0; i < rows.size(); ++i) at.emplace(rows[i].value("name", ""), i);
  std::vector<SqlRow> out;
  out.reserve(sel.names.size());
  for (const auto& n : sel.names) {
    auto it = at.find(n);
    if (it == at.end())
      return fail(ErrorCode::not_found, fmt::format("device '{}' not found", n),
                  "list registered devices with 'gedge device ls'");
    out.push_back(rows[it->second]);
  }
  return out;
}

Result<std::vector<std::string>> select_devices(Inventory& inv, const DeviceSelector& sel) {
  if (!sel.names.empty()) {
    GEDGE_TRY(select_device_rows(inv, sel));  // every name is registered
    return sel.names;
  }
  GEDGE_TRY_ASSIGN(auto rows, query_selected(inv, sel, "name"));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r["name"].get_ref<std::string&>()));
  return out;
}

Result<nlohmann::json> device_list(Inventory& inv, const DeviceSelector& filter) {
  std::vector<SqlValue> params;
  std::string where = selector_where(filter, params);
  GEDGE_TRY_ASSIGN(auto rows,
                   inv.query("SELECT * FROM devices" + where + " ORDER BY name", params));
  nlohmann::json out = nlohmann::json::array();
  out.get_ref<nlohmann::json::array_t&>().reserve(rows.size());
  for (auto& r : rows) {
    out.push_back(device_json(std::move(r)));
    r = nullptr;  // the row's remains go now, not all at once at the end
  }
  return out;
}

Result<bool> device_list_json(Inventory& inv, const DeviceSelector& filter, std::string& out) {
  std::vector<SqlValue> params;
  std::string sql = "SELECT * FROM devices" + selector_where(filter, params) + " ORDER BY name";
  sqlite3* db = inv.raw();
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
    return fail(ErrorCode::failure, fmt::format("inventory: prepare: {}", sqlite3_errmsg(db)));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st(raw, sqlite3_finalize);
  for (std::size_t i = 0; i < params.size(); ++i) {  // the selector binds only text
    const auto& v = std::get<std::string>(params[i]);
    if (sqlite3_bind_text(raw, static_cast<int>(i + 1), v.data(), static_cast<int>(v.size()),
                          SQLITE_TRANSIENT) != SQLITE_OK)
      return fail(ErrorCode::failure, fmt::format("inventory: bind: {}", sqlite3_errmsg(db)));
  }
  std::map<std::string, int, std::less<>> index;
  for (int c = 0; c < sqlite3_column_count(raw); ++c) index[sqlite3_column_name(raw, c)] = c;
  auto col = [&index](std::string_view name) {
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
  };
  // A column's value as Inventory::query reads it; strings reuse one buffer.
  nlohmann::json text = std::string(), number, null;
  auto value = [&](int c) -> const nlohmann::json& {
    if (c < 0) return null;
    switch (sqlite3_column_type(raw, c)) {
      case SQLITE_INTEGER:
        number = sqlite3_column_int64(raw, c);
        return number;
      case SQLITE_FLOAT:
        number = sqlite3_column_double(raw, c);
        return number;
      case SQLITE_NULL:
        return null;
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
        text.get_ref<std::string&>().assign(p ? p : "",
                                            static_cast<std::size_t>(sqlite3_column_bytes(raw, c)));
        return text;
      }
    }
  };
  auto owned = [&](int c) { return nlohmann::json(value(c)); };
  // The device object's members in the order dump() prints them (std::map: sorted by key); the
  // unit test compares this with rendering device_list's result.
  struct Member {
    const char* key;
    int column;  // -1: composed below
  };
  const Member members[] = {
      {"alias", col("alias")},
      {"auth", col("auth")},
      {"certificate", col("certificate")},
      {"facts", -1},
      {"groups", -1},
      {"host", col("host")},
      {"host_key", -1},
      {"identity", col("identity")},
      {"identity_agent", col("identity_agent")},
      {"labels", -1},
      {"last_seen", col("last_seen")},
      {"name", col("name")},
      {"port", col("port")},
      {"proxy_jump", -1},
      {"rtt_ms", col("rtt_ms")},
      {"site", col("site")},
      {"status", col("status")},
      {"tier", col("tier")},
      {"user", col("user")},
  };
  const int c_facts = col("facts"), c_groups = col("groups"), c_labels = col("labels"),
            c_jump = col("proxy_jump"), c_kt = col("host_key_type"), c_kf = col("host_key_fp");
  using Serializer = nlohmann::detail::serializer<nlohmann::json>;
  Serializer ser(nlohmann::detail::output_adapter<char, std::string>(out), ' ',
                 nlohmann::json::error_handler_t::strict);
  constexpr unsigned kStep = 2, kMember = 4;  // array elements at 2, their members at 4
  std::string empty_facts;  // the facts of a device never checked ("{}"), printed once
  {
    Serializer once(nlohmann::detail::output_adapter<char, std::string>(empty_facts), ' ',
                    nlohmann::json::error_handler_t::strict);
    once.dump(facts_object(nlohmann::json::object()), true, false, kStep, kMember);
  }
  bool first = true;
  try {
    for (;;) {
      int rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW)
        return fail(ErrorCode::failure, fmt::format("inventory: query: {}", sqlite3_errmsg(db)));
      out += first ? "[\n  {\n" : ",\n  {\n";
      first = false;
      bool first_member = true;
      for (const auto& m : members) {
        out += first_member ? "    \"" : ",\n    \"";
        first_member = false;
        out += m.key;
        out += "\": ";
        std::string_view key = m.key;
        if (m.column >= 0 || (key != "facts" && key != "groups" && key != "host_key" &&
                              key != "labels" && key != "proxy_jump")) {
          ser.dump(value(m.column), true, false, kStep, kMember);
        } else if (key == "facts") {
          const auto& f = value(c_facts);
          if (f.is_string() && f.get_ref<const std::string&>() == "{}")
            out += empty_facts;
          else
            ser.dump(facts_object(parse_json_text(f, nlohmann::json::object())), true, false, kStep,
                     kMember);
        } else if (key == "groups") {
          ser.dump(parse_json_text(value(c_groups), nlohmann::json::array()), true, false, kStep,
                   kMember);
        } else if (key == "labels") {
          ser.dump(parse_json_text(value(c_labels), nlohmann::json::object()), true, false, kStep,
                   kMember);
        } else if (key == "host_key") {
          ser.dump(nlohmann::json{{"type", owned(c_kt)}, {"fingerprint", owned(c_kf)}}, true, false,
                   kStep, kMember);
        } else {
          ser.dump(jump_object(parse_json_text(value(c_jump), nullptr)), true, false, kStep,
                   kMember);
        }
      }
      out += "\n  }";
    }
  } catch (const nlohmann::json::type_error&) {
    return false;  // a string that is not UTF-8: only the lossless rendering may print it
  }
  out += first ? "[]" : "\n]";
  return true;
}

Result<nlohmann::json> device_show(Inventory& inv, std::string_view name) {
  GEDGE_TRY_ASSIGN(auto row, load_device(inv, name));
  auto d = device_json(row);
  d["token_registered"] = row["token_hash"].is_string();
  d["topology_xml_bytes"] =
      row["topology_xml"].is_string() ? row["topology_xml"].get<std::string>().size() : 0;
  d["created_at"] = row["created_at"];
  d["updated_at"] = row["updated_at"];
  GEDGE_TRY_ASSIGN(
      auto clusters,
      inv.query("SELECT cluster FROM cluster_members WHERE device = ? ORDER BY cluster",
                {std::string(name)}));
  d["clusters"] = nlohmann::json::array();
  for (const auto& c : clusters) d["clusters"].push_back(c["cluster"]);
  return d;
}

}  // namespace gedge
