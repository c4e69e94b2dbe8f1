// Trust from known_hosts files operators already have (--known-hosts, known_hosts_files): plain
// and hashed (|1|salt|hash) host fields, patterns with * ? and !, [host]:port, @revoked keys and
// the @cert-authority lines that apply to a host.
#include "gedge/known_hosts.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
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

Result<KnownHostsVerdict> known_hosts_lookup(const std::vector<std::string>& files,
                                             const std::vector<std::string>& names,
                                             const HostKey& presented) {
  KnownHostsVerdict v;
  std::string want_type = presented.public_key.substr(0, presented.public_key.find(' '));
  std::string want_b64 = presented.public_key.substr(presented.public_key.find(' ') + 1);
  want_b64 = want_b64.substr(0, want_b64.find(' '));
  std::string revoked_where;
  for (const auto& f : files) {
    auto text = read_input_file(f, 64u << 20, "known_hosts file");
    if (!text) return fail(ErrorCode::usage, text.error().message, "check the path");
    std::istringstream in(*text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      std::istringstream ls(line);
      std::string first, hosts, type, b64;
      if (!(ls >> first) || first[0] == '#') continue;
      std::string marker;
      if (first[0] == '@') {
        marker = first;
        if (!(ls >> hosts)) continue;
      } else {
        hosts = first;
      }
      if (!(ls >> type >> b64)) continue;
      std::string where = fmt::format("{}:{}", f, n);
      if (marker == "@revoked") {
        // A revoked key is refused whichever host presents it (and OpenSSH gets every one when
        // it verifies a host certificate: a revoked CA or certified key is refused there too).
        v.revoked_keys.push_back(type + " " + b64);
        if (type == want_type && b64 == want_b64 && revoked_where.empty()) revoked_where = where;
        continue;
      }
      if (!hosts_match(hosts, names)) continue;
      if (marker == "@cert-authority") {
        v.cert_authorities.push_back({where, type + " " + b64});
        continue;
      }
      if (!marker.empty()) continue;
      if (type == want_type && b64 == want_b64) {
        if (v.kind != KnownHostsVerdict::match) v.where = where;
        v.kind = KnownHostsVerdict::match;
      } else if (v.kind == KnownHostsVerdict::none) {
        v.kind = KnownHostsVerdict::mismatch;
        v.where = where;
        v.listed_type = type;
      }
    }
  }
  if (!revoked_where.empty()) {
    v.kind = KnownHostsVerdict::revoked;
    v.where = revoked_where;
  }
  return v;
}

}  // namespace gedge
