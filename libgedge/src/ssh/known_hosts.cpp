// Trust from known_hosts files operators already have (--known-hosts, known_hosts_files): plain
// and hashed (|1|salt|hash) host fields, patterns with * ? and !, [host]:port, @revoked keys and
// the @cert-authority lines that apply to a host.
#include "gedge/known_hosts.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "gedge/document.hpp"

namespace gedge {

namespace {

// OpenSSH's match_pattern: '*' any run, '?' one character.
bool glob(std::string_view p, std::string_view s) {
  if (p.empty()) return s.empty();
  if (p[0] == '*') {
    for (std::size_t i = 0; i <= s.size(); ++i)
      if (glob(p.substr(1), s.substr(i))) return true;
    return false;
  }
  if (s.empty()) return false;
  if (p[0] != '?' && std::tolower(static_cast<unsigned char>(p[0])) !=
                         std::tolower(static_cast<unsigned char>(s[0])))
    return false;
  return glob(p.substr(1), s.substr(1));
}

std::string b64decode(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return {};
  std::size_t pad = 0;
  for (auto it = in.rbegin(); it != in.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

// |1|base64(salt)|base64(HMAC-SHA1(salt, name))
bool hashed_match(const std::string& field, const std::string& name) {
  auto p = field.find('|', 3);
  if (field.rfind("|1|", 0) != 0 || p == std::string::npos) return false;
  std::string salt = b64decode(field.substr(3, p - 3)), want = b64decode(field.substr(p + 1));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()),
            reinterpret_cast<const unsigned char*>(name.data()), name.size(), mac, &len))
    return false;
  return want.size() == len && std::memcmp(want.data(), mac, len) == 0;
}

// Does the host field name any of `names`? (negated patterns veto)
bool hosts_match(const std::string& field, const std::vector<std::string>& names) {
  if (field.rfind("|1|", 0) == 0) {
    for (const auto& n : names)
      if (hashed_match(field, n)) return true;
    return false;
  }
  bool hit = false;
  std::istringstream in(field);
  std::string pat;
  while (std::getline(in, pat, ',')) {
    bool neg = !pat.empty() && pat[0] == '!';
    if (neg) pat = pat.substr(1);
    for (const auto& n : names)
      if (glob(pat, n)) {
        if (neg) return false;
        hit = true;
      }
  }
  return hit;
}

}  // namespace

std::vector<std::string> known_hosts_names(const std::string& host, int port,
                                           const std::string& alias) {
  auto form = [&](const std::string& h) {
    return (port == 0 || port == 22) ? h : fmt::format("[{}]:{}", h, port);
  };
  std::vector<std::string> names = {form(host)};
  if (!alias.empty() && alias != host) names.push_back(form(alias));
  return names;
}

namespace {

struct KeyLine {
  std::string where, marker, hosts, type, b64;
};

// Every key line of every file (comments and malformed lines skipped), in order.
Result<std::vector<KeyLine>> key_lines(const std::vector<std::string>& files) {
  std::vector<KeyLine> out;
  for (const auto& f : files) {
    auto text = read_input_file(f, 64u << 20, "known_hosts file");
    if (!text) return fail(ErrorCode::usage, text.error().message, "check the path");
    std::istringstream in(*text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::istringstream ls(line);
      KeyLine k;
      std::string first;
      if (!(ls >> first) || first[0] == '#') continue;
      if (first[0] == '@') {
        k.marker = first;
        if (!(ls >> k.hosts)) continue;
      } else {
        k.hosts = first;
      }
      if (!(ls >> k.type >> k.b64)) continue;
      k.where = fmt::format("{}:{}", f, n);
      out.push_back(std::move(k));
    }
  }
  return out;
}

}  // namespace

Result<KnownHostsVerdict> known_hosts_lookup(const std::vector<std::string>& files,
                                             const std::vector<std::string>& names,
                                             const HostKey& presented) {
  KnownHostsVerdict v;
  std::string want_type = presented.public_key.substr(0, presented.public_key.find(' '));
  std::string want_b64 = presented.public_key.substr(presented.public_key.find(' ') + 1);
  want_b64 = want_b64.substr(0, want_b64.find(' '));
  std::string revoked_where;
  GEDGE_TRY_ASSIGN(auto lines, key_lines(files));
  for (const auto& k : lines) {
    if (k.marker == "@revoked") {
      // A revoked key is refused whichever host presents it (and OpenSSH gets every one when
      // it verifies a host certificate: a revoked CA or certified key is refused there too).
      v.revoked_keys.push_back(k.type + " " + k.b64);
      if (k.type == want_type && k.b64 == want_b64 && revoked_where.empty())
        revoked_where = k.where;
      continue;
    }
    if (!hosts_match(k.hosts, names)) continue;
    if (k.marker == "@cert-authority") {
      v.cert_authorities.push_back({k.where, k.type + " " + k.b64});
      continue;
    }
    if (!k.marker.empty()) continue;
    if (k.type == want_type && k.b64 == want_b64) {
      if (v.kind != KnownHostsVerdict::match) v.where = k.where;
      v.kind = KnownHostsVerdict::match;
    } else if (v.kind == KnownHostsVerdict::none) {
      v.kind = KnownHostsVerdict::mismatch;
      v.where = k.where;
      v.listed_type = k.type;
    }
  }
  if (!revoked_where.empty()) {
    v.kind = KnownHostsVerdict::revoked;
    v.where = revoked_where;
  }
  return v;
}

Result<std::vector<ListedKey>> known_hosts_listed_keys(
    const std::vector<std::string>& files, const std::vector<std::vector<std::string>>& hosts) {
  GEDGE_TRY_ASSIGN(auto lines, key_lines(files));
  std::set<std::string> revoked;
  for (const auto& k : lines)
    if (k.marker == "@revoked") revoked.insert(k.type + " " + k.b64);
  std::vector<const KeyLine*> plain;
  for (const auto& k : lines)
    if (k.marker.empty() && !revoked.contains(k.type + " " + k.b64)) plain.push_back(&k);
  // The order libssh prefers (the pinned type is the one asked for on every connection).
  const std::vector<std::string> preferred = {"ssh-ed25519", "ecdsa-sha2-nistp521",
                                              "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256",
                                              "ssh-rsa"};
  std::vector<ListedKey> out(hosts.size());
  for (std::size_t h = 0; h < hosts.size(); ++h) {
    std::vector<const KeyLine*> listed;
    for (const auto* k : plain)
      if (hosts_match(k->hosts, hosts[h])) listed.push_back(k);
    auto rank = [&](const KeyLine* k) {
      auto it = std::find(preferred.begin(), preferred.end(), k->type);
      return static_cast<std::size_t>(it - preferred.begin());
    };
    const KeyLine* pick = nullptr;
    for (const auto* k : listed)
      if (!pick || rank(k) < rank(pick)) pick = k;
    if (!pick) continue;
    for (const auto* k : listed)
      if (k->type == pick->type && k->b64 != pick->b64) {
        out[h].conflict = fmt::format("{} and {} list different {} keys for the host", pick->where,
                                      k->where, pick->type);
        break;
      }
    if (out[h].conflict.empty())
      out[h].key = KnownHostsLine{pick->where, pick->type + " " + pick->b64};
  }
  return out;
}

std::string key_fingerprint(const std::string& key_line) {
  std::istringstream in(key_line);
  std::string type, b64;
  if (!(in >> type >> b64)) return "";
  std::string blob = b64decode(b64);
  if (blob.empty()) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!EVP_Digest(blob.data(), blob.size(), md, &len, EVP_sha256(), nullptr)) return "";
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), md, static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  return "SHA256:" + out;
}

}  // namespace gedge
