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
// The same text for `manifest` (without "entries") with "entries" set to `entries_text`, an array
// already in canonical form: pack writes its entries as text (append_json_string) instead of
// building a JSON tree of every entry. A unit test holds it equal to canonical_manifest.
std::string canonical_manifest_with_entries(nlohmann::json manifest, std::string_view entries_text);
// Appends `s` (valid UTF-8) as a JSON string exactly as nlohmann::json::dump() writes it: '"',
// '\\', \b \f \n \r \t escaped, other bytes below 0x20 as \u00xx, the rest as they are.
void append_json_string(std::string& out, std::string_view s);

// Parses a stored manifest; failure when its format is newer than this gedge reads, or when any
// entry is malformed: a path that is empty, absolute, has '.', '..' or empty components, repeats,
// or whose parent is not an earlier directory entry; a hardlink to anything but an earlier file;
// a mode outside 07777; a file without a 64-hex sha256, a size or its chunks. The materialisers
// rely on this: every path they create stays under the target.
Result<nlohmann::json> parse_manifest(const std::string& text, std::string_view what);

// The mode an entry is materialised with. Unless the bundle was packed with
// --keep-special-modes (recorded as "keep_special_modes": true), setuid, setgid, sticky and
// group/other write are stripped (old manifests recorded them); files are also read-only, since
// a file is a hardlink of an object shared by every bundle with the same content.
unsigned applied_mode(const nlohmann::json& manifest, const nlohmann::json& entry);

// The mode pack records for a walked file or directory (see applied_mode).
constexpr unsigned recorded_mode(unsigned st_mode, bool keep_special) {
  return keep_special ? (st_mode & 07777) : (st_mode & 0755);
}
Result<nlohmann::json> parse_manifest(const std::string& text, std::string_view what);

// PATH / LD_LIBRARY_PATH / CONDA_PREFIX / VIRTUAL_ENV / CUDA_HOME from the component trees.
nlohmann::json derive_env(const nlohmann::json& manifest, const std::vector<ComponentSpec>& comps);

// A file's id. From manifest format 2 on, a file of several chunks is named by the SHA-256 of its
// chunk list ("gedge-chunks\n", then each chunk's hex id and '\n'), so pack reads and hashes each
// byte once; a file of one chunk, and every file of a format-1 manifest, by the SHA-256 of its
// bytes (for one chunk, the chunk's id).
std::string file_id(const std::vector<std::pair<std::string, uint64_t>>& chunks);
// True when `e`'s id is its chunk list's (format 2, several chunks): its content is then verified
// chunk by chunk, and parse_manifest has checked the id against the list.
bool named_by_chunks(const nlohmann::json& manifest, const nlohmann::json& e);
// True when `content` is the file entry `e` of `manifest` (by its bytes, or chunk by chunk).
bool file_matches(const nlohmann::json& manifest, const nlohmann::json& e,
                  std::string_view content);

// Every distinct chunk hash of the manifest, with its uncompressed size.
std::vector<std::pair<std::string, uint64_t>> manifest_chunks(const nlohmann::json& manifest);

}  // namespace gedge::runtime
