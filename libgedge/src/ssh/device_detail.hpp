// Internals shared by the device registry files (not public API).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "gedge/device.hpp"

namespace gedge::detail {

// A TEXT column holding JSON, parsed; `fallback` when NULL or invalid.
nlohmann::json parse_json_text(const nlohmann::json& v, nlohmann::json fallback);
// One devices row as the public device object (`device ls -o json` element); the rvalue form
// moves the row's values instead of copying them.
nlohmann::json device_json(const SqlRow& r);
nlohmann::json device_json(SqlRow&& r);
// The devices row for `name`; not_found (exit 4) when unknown.
Result<SqlRow> load_device(Inventory& inv, std::string_view name);
SshTarget target_of(const SqlRow& r);
// The HostKeyAlias a device's ProxyJump hop is pinned under: "<device>/jump" ('/' is not
// allowed in device names, so it never collides with a device).
std::string jump_alias(std::string_view device);
// The known_hosts marker older gedge versions wrote ("host" or "[host]:port").
std::string legacy_marker(const std::string& host, int port);
// 32 random bytes as hex (the device token).
std::string random_token();

}  // namespace gedge::detail
