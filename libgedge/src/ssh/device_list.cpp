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
#include "gedge/stores.hpp"

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

// The selector's tier, groups and labels (labels_match's and in_groups's rules, applied by
// SQLite before gedge parses anything).
DeviceFilter filter_of(const DeviceSelector& sel) {
  return DeviceFilter{sel.tier, sel.groups, sel.labels};
}

// Usage when a selector other than names selects nothing at all.
Result<void> check_selects(const DeviceSelector& sel) {
  if (!sel.all && sel.labels.empty() && sel.tier.empty() && sel.groups.empty())
    return fail(ErrorCode::usage, "no devices selected",
                "name devices, or use --all, --group NAME or --label k=v");
  return {};
}

Error none_match() {
  return Error{ErrorCode::not_found, "no registered device matches the selection",
               "see 'gedge device ls'"};
}

}  // namespace

Result<std::vector<SqlRow>> detail::select_device_rows(Inventory& inv, const DeviceSelector& sel) {
  if (sel.names.empty()) {
    GEDGE_TRY(check_selects(sel));
    GEDGE_TRY_ASSIGN(auto rows, DeviceStore(inv).rows(filter_of(sel)));
    if (rows.empty() && !sel.all) return std::unexpected(none_match());
    return rows;
  }
  // One query for every named device (not one per name), then in the order given.
  GEDGE_TRY_ASSIGN(auto rows, DeviceStore(inv).rows_named(sel.names));
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
  GEDGE_TRY(check_selects(sel));
  GEDGE_TRY_ASSIGN(auto out, DeviceStore(inv).names(filter_of(sel)));
  if (out.empty() && !sel.all) return std::unexpected(none_match());
  return out;
}

Result<nlohmann::json> device_list(Inventory& inv, const DeviceSelector& filter) {
  GEDGE_TRY_ASSIGN(auto rows, DeviceStore(inv).rows(filter_of(filter)));
  nlohmann::json out = nlohmann::json::array();
  out.get_ref<nlohmann::json::array_t&>().reserve(rows.size());
  for (auto& r : rows) {
    out.push_back(device_json(std::move(r)));
    r = nullptr;  // the row's remains go now, not all at once at the end
  }
  return out;
}

Result<bool> device_list_json(Inventory& inv, const DeviceSelector& filter, std::string& out) {
  // The device object's members in the order dump() prints them (std::map: sorted by key); the
  // unit test compares this with rendering device_list's result.
  struct Member {
    const char* key;
    int column;  // -1: composed below
  };
  static constexpr const char* kKeys[] = {
      "alias",    "auth",           "certificate", "facts",     "groups", "host", "host_key",
      "identity", "identity_agent", "labels",      "last_seen", "name",   "port", "proxy_jump",
      "rtt_ms",   "site",           "status",      "tier",      "user"};
  std::vector<Member> members;
  int c_facts = -1, c_groups = -1, c_labels = -1, c_jump = -1, c_kt = -1, c_kf = -1;
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
  auto row = [&](DeviceRowView& v) {
    if (first) {
      for (const char* k : kKeys) {
        std::string_view key = k;
        bool composed = key == "facts" || key == "groups" || key == "host_key" || key == "labels" ||
                        key == "proxy_jump";
        members.push_back({k, composed ? -1 : v.column(key)});
      }
      c_facts = v.column("facts"), c_groups = v.column("groups"), c_labels = v.column("labels"),
      c_jump = v.column("proxy_jump"), c_kt = v.column("host_key_type"),
      c_kf = v.column("host_key_fp");
    }
    auto owned = [&](int c) { return nlohmann::json(v.value(c)); };
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
        ser.dump(v.value(m.column), true, false, kStep, kMember);
      } else if (key == "facts") {
        const auto& f = v.value(c_facts);
        if (f.is_string() && f.get_ref<const std::string&>() == "{}")
          out += empty_facts;
        else
          ser.dump(facts_object(parse_json_text(f, nlohmann::json::object())), true, false, kStep,
                   kMember);
      } else if (key == "groups") {
        ser.dump(parse_json_text(v.value(c_groups), nlohmann::json::array()), true, false, kStep,
                 kMember);
      } else if (key == "labels") {
        ser.dump(parse_json_text(v.value(c_labels), nlohmann::json::object()), true, false, kStep,
                 kMember);
      } else if (key == "host_key") {
        ser.dump(nlohmann::json{{"type", owned(c_kt)}, {"fingerprint", owned(c_kf)}}, true, false,
                 kStep, kMember);
      } else {
        ser.dump(jump_object(parse_json_text(v.value(c_jump), nullptr)), true, false, kStep,
                 kMember);
      }
    }
    out += "\n  }";
  };
  try {
    GEDGE_TRY(DeviceStore(inv).scan(filter_of(filter), row));
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
  GEDGE_TRY_ASSIGN(auto clusters, ClusterStore(inv).of_device(std::string(name)));
  d["clusters"] = clusters;
  return d;
}

}  // namespace gedge
