// What the cli's device verbs show: result objects, table columns and footers (the -o json
// output is the result object itself). Defined in ssh/device_views.cpp.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gedge/device.hpp"

namespace gedge {

// `device add`: the device object with changed, bootstrapped and token_issued; the footer.
nlohmann::json device_add_json(const DeviceAddResult& res);
std::string device_add_summary(const DeviceAddResult& res, const std::string& name);
// The table's LABELS column: each device gains labels_text "k=v,..." (a stored labels value that
// is not an object shows none).
void add_labels_text(nlohmann::json& devices);
// A fan-out report's footer: "N ok, N failed, N unreachable".
std::string fan_out_summary(const nlohmann::json& report);
// `device check`'s table: each result gains rtt_text, its rtt_ms with two decimals ("-": none).
void add_rtt_text(nlohmann::json& report);
// `device exec NAME... -- CMD`: the names, without the command CLI11 also handed to the
// positional (its last words when they equal the command after --).
std::vector<std::string> exec_device_names(std::vector<std::string> positional,
                                           const std::vector<std::string>& command);
// `device exec`'s table: one block per device ("=== NAME (exit N|STATUS, N ms)", its stdout, each
// stderr line as "stderr: ..."; a connection failure's message when it has no stderr), then the
// summary line; each block whole, so outputs never interleave.
std::string exec_text(const nlohmann::json& report);
// `device rekey`: {device, old {type, fingerprint}, new {...}, changed}.
nlohmann::json rekey_json(const RekeyPlan& plan);
// --host-key of rekey: host_key naming both fingerprints when the new key is another.
Result<void> rekey_expect(const RekeyPlan& plan, const std::string& expect);

}  // namespace gedge
