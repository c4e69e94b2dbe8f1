// The remote step of push --device/--cluster and verify --device: a small python3 materialiser
// (stdlib only), run over SSH as argv (`python3 -c`, data on stdin; no shell string is built from
// input). Its reply is read by detail::materialiser_reply (gedge/runtime.hpp).
#pragma once

#include <string>
#include <vector>

namespace gedge::runtime::detail {

// The materialiser's argv for `mode` under `root`: "have" (read-only: which chunks are missing,
// whether zstd is there, whether ROOT/<id> exists; the hashes on stdin), "apply" (the manifest
// and the missing chunks on stdin: stores them, builds or repairs ROOT/<id>) or "verify"
// (ROOT/<id> against its manifest, read-only). `id` is left out when empty.
std::vector<std::string> materialiser_argv(const std::string& mode, const std::string& root,
                                           const std::string& id);

}  // namespace gedge::runtime::detail
