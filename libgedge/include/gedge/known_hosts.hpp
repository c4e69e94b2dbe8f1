// Trust from the known_hosts files operators already have (`--known-hosts FILE`, config
// `known_hosts_files`): the OpenSSH format with plain and hashed (|1|salt|hash) host fields,
// patterns (* ? !), [host]:port forms, @revoked keys and @cert-authority lines. A matching line
// pins the presented key with no --host-key or prompt; a line for the host with another key, or
// a revoked key, refuses it; the @cert-authority lines naming the host are returned for the
// caller to have the host's certificate verified (see verify_host_certificate in openssh.hpp).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gedge/error.hpp"
#include "gedge/ssh.hpp"

namespace gedge {

struct KnownHostsLine {
  std::string where;  // FILE:LINE
  std::string key;    // "type base64"
};

struct KnownHostsVerdict {
  enum Kind { none, match, mismatch, revoked } kind = none;
  std::string where;                             // FILE:LINE of the deciding line
  std::string listed_type;                       // mismatch: the key type the file lists
  std::vector<KnownHostsLine> cert_authorities;  // @cert-authority lines naming the host
  std::vector<std::string> revoked_keys;         // every @revoked key ("type base64"), any host
};

// The names OpenSSH would look a host up by: "host" (port 22) or "[host]:port", and the same
// for the ssh config alias the operator typed when it differs.
std::vector<std::string> known_hosts_names(const std::string& host, int port,
                                           const std::string& alias = "");

// Looks `presented` (public_key "type base64" required) up for `names` in every file. usage
// when a file cannot be read. @revoked anywhere wins; then a matching line; then a line for the
// host with another key (mismatch).
Result<KnownHostsVerdict> known_hosts_lookup(const std::vector<std::string>& files,
                                             const std::vector<std::string>& names,
                                             const HostKey& presented);

// The keys to pin with no connection (device import --no-connect), one per host, each host
// given by the names it is looked up by: of the plain lines naming the host whose key is not
// @revoked, the one of the most preferred type (Ed25519, ECDSA, RSA, then others); none when no
// line names it. Two different keys of that type for a host are a conflict (which one is the
// host's is not known): no key, and `conflict` says which lines. usage when a file cannot be read.
struct ListedKey {
  std::optional<KnownHostsLine> key;
  std::string conflict;
};
Result<std::vector<ListedKey>> known_hosts_listed_keys(
    const std::vector<std::string>& files, const std::vector<std::vector<std::string>>& hosts);

// The SHA256 fingerprint ("SHA256:" + unpadded base64, as ssh-keygen -l prints it) of a key
// given as "type base64"; "" when the base64 is malformed.
std::string key_fingerprint(const std::string& key_line);

// known_hosts_update (ssh.hpp) for many aliases in one locked rewrite of gedge's own file: each
// (alias, "type base64") replaces the alias's line ("" removes it).
Result<void> known_hosts_set(const std::filesystem::path& file,
                             const std::vector<std::pair<std::string, std::string>>& lines,
                             std::string_view legacy_marker = {});

}  // namespace gedge
