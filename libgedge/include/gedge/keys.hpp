// gedge's own SSH identity: an ed25519 key pair in GEDGE_HOME.
#pragma once

#include <string>

#include "gedge/error.hpp"
#include "gedge/paths.hpp"

namespace gedge {

struct KeyPairStatus {
  std::string public_line;  // "ssh-ed25519 AAAA... gedge@host"
  std::string fingerprint;  // "SHA256:..."
  bool created = false;     // false when the pair already existed
};

// Creates id_ed25519 (0600) and id_ed25519.pub when missing; never overwrites an existing key.
Result<KeyPairStatus> ensure_keypair(const Paths& paths);

// Reads the existing public key line; not_found (hint: gedge init) when there is none.
Result<KeyPairStatus> read_public_key(const Paths& paths);

}  // namespace gedge
