// Manifest helpers shared by pack, store and push.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/runtime.hpp"

namespace gedge::runtime {

// The manifest's canonical text (sorted keys, no whitespace): the bundle id is its SHA-256.
std::string canonical_manifest(const nlohmann::json& manifest);

// Parses a stored manifest; failure when its format is newer than this gedge reads.
Result<nlohmann::json> parse_manifest(const std::string& text, std::string_view what);

// PATH / LD_LIBRARY_PATH / CONDA_PREFIX / VIRTUAL_ENV / CUDA_HOME from the component trees.
nlohmann::json derive_env(const nlohmann::json& manifest, const std::vector<ComponentSpec>& comps);

// Every distinct chunk hash of the manifest, with its uncompressed size.
std::vector<std::pair<std::string, uint64_t>> manifest_chunks(const nlohmann::json& manifest);

}  // namespace gedge::runtime
