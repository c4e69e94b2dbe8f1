#include "gedge/keys.hpp"

#include <fmt/format.h>
#include <libssh/libssh.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

namespace gedge {

namespace {

struct KeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using Key = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

Result<std::string> fingerprint_of(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK)
    return fail(ErrorCode::internal, "cannot hash public key");
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = fp ? fp : "";
  ssh_string_free_char(fp);
  return out;
}

std::string comment() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("gedge@{}", host);
}

}  // namespace

Result<KeyPairStatus> read_public_key(const Paths& paths) {
  std::string pub = paths.key.string() + ".pub";
  ssh_key raw = nullptr;
  if (::access(pub.c_str(), R_OK) != 0)
    return fail(ErrorCode::not_found,
                fmt::format("gedge has no key pair in {}", paths.home.string()),
                "run 'gedge init' first");
  if (ssh_pki_import_pubkey_file(pub.c_str(), &raw) != SSH_OK)
    return fail(ErrorCode::failure, fmt::format("cannot read public key {}", pub));
  Key key(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK)
    return fail(ErrorCode::internal, "cannot encode public key");
  KeyPairStatus st;
  st.public_line =
      fmt::format("{} {} {}", ssh_key_type_to_char(ssh_key_type(key.get())), b64, comment());
  ssh_string_free_char(b64);
  GEDGE_TRY_ASSIGN(st.fingerprint, fingerprint_of(key.get()));
  return st;
}

Result<KeyPairStatus> ensure_keypair(const Paths& paths) {
  if (::access(paths.key.c_str(), F_OK) == 0) {
    GEDGE_TRY_ASSIGN(auto st, read_public_key(paths));
    st.created = false;
    return st;
  }
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK)
    return fail(ErrorCode::internal, "cannot generate an ed25519 key");
  Key key(raw);
  // Write to temporary names, then rename, so a crash never leaves half a key pair.
  std::string tmp = paths.key.string() + ".tmp";
  ::unlink(tmp.c_str());
  mode_t old = ::umask(077);
  int rc = ssh_pki_export_privkey_file(key.get(), nullptr, nullptr, nullptr, tmp.c_str());
  ::umask(old);
  if (rc != SSH_OK) return fail(ErrorCode::failure, fmt::format("cannot write {}", tmp));
  ::chmod(tmp.c_str(), 0600);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK)
    return fail(ErrorCode::internal, "cannot encode public key");
  std::string line = fmt::format("ssh-ed25519 {} {}\n", b64, comment());
  ssh_string_free_char(b64);
  GEDGE_TRY(write_file_atomic(paths.key.string() + ".pub", line, 0600));
  if (::rename(tmp.c_str(), paths.key.c_str()) != 0)
    return fail(ErrorCode::failure, fmt::format("cannot create {}", paths.key.string()));
  GEDGE_TRY_ASSIGN(auto st, read_public_key(paths));
  st.created = true;
  return st;
}

}  // namespace gedge
