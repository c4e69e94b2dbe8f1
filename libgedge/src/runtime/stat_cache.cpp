#include "stat_cache.hpp"

#include <fmt/format.h>

#include <charconv>
#include <string_view>

#include "chunk_store.hpp"

namespace gedge::runtime::detail {

namespace {

// 2: file ids of manifest format 2 (a cache of format-1 ids is not used).
constexpr std::string_view kMagic = "gedge-statcache 2\n";

// A cursor over the file: space/newline-separated numbers and words, length-prefixed paths.
struct Reader {
  std::string_view s;
  bool ok = true;

  void skip_sep() {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n')) s.remove_prefix(1);
  }
  template <class T>
  T num() {
    skip_sep();
    T v{};
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr == s.data()) {
      ok = false;
      return v;
    }
    s.remove_prefix(static_cast<std::size_t>(r.ptr - s.data()));
    return v;
  }
  std::string_view word() {
    skip_sep();
    std::size_t n = 0;
    while (n < s.size() && s[n] != ' ' && s[n] != '\n') ++n;
    if (n == 0) ok = false;
    auto w = s.substr(0, n);
    s.remove_prefix(n);
    return w;
  }
  std::string_view bytes(std::size_t n) {
    if (s.size() < n + 1 || s[0] != ' ') {
      ok = false;
      return {};
    }
    auto b = s.substr(1, n);
    s.remove_prefix(n + 1);
    return b;
  }
};

void append_record(std::string& out, const std::string& path, const StatRecord& r) {
  out += fmt::format("{} ", path.size());
  out += path;
  out += fmt::format(" {} {} {} {} {} {} {} {} {}", r.size, r.mtime_ns, r.ctime_ns, r.ino, r.dev,
                     r.out_size, r.sha256, r.relocated ? 1 : 0, r.chunks.size());
  for (const auto& [h, n] : r.chunks) out += fmt::format(" {} {}", h, n);
  out += '\n';
}

}  // namespace

StatCache StatCache::load(const std::filesystem::path& file, const std::string& key) {
  auto fresh = [&] {
    StatCache e;
    e.key_ = key;
    return e;
  };
  StatCache c = fresh();
  auto text = slurp(file);
  if (!text || !std::string_view(*text).starts_with(kMagic)) return c;
  Reader rd{std::string_view(*text).substr(kMagic.size())};
  // sets: "S <key> <bytes>\n" then that many bytes of records
  for (;;) {
    rd.skip_sep();
    if (rd.s.empty()) break;
    if (rd.word() != "S") return fresh();
    std::string k(rd.word());
    auto n = rd.num<std::size_t>();
    if (!rd.ok || rd.s.size() < n + 1) return fresh();
    std::string_view body = rd.s.substr(1, n);
    rd.s.remove_prefix(n + 1);
    if (k != key) {
      c.others_.emplace_back(std::move(k), std::string(body));
      continue;
    }
    Reader r{body};
    for (;;) {
      r.skip_sep();
      if (r.s.empty()) break;
      auto plen = r.num<std::size_t>();
      std::string path(r.bytes(plen));
      StatRecord rec;
      rec.size = r.num<uint64_t>();
      rec.mtime_ns = r.num<int64_t>();
      rec.ctime_ns = r.num<int64_t>();
      rec.ino = r.num<uint64_t>();
      rec.dev = r.num<uint64_t>();
      rec.out_size = r.num<uint64_t>();
      rec.sha256 = std::string(r.word());
      rec.relocated = r.num<int>() == 1;
      auto nc = r.num<std::size_t>();
      for (std::size_t i = 0; r.ok && i < nc; ++i) {
        std::string h(r.word());
        rec.chunks.emplace_back(std::move(h), r.num<uint64_t>());
      }
      if (!r.ok || rec.sha256.size() != 64) {
        c.set_.clear();  // damaged: trust none of it
        break;
      }
      c.set_.emplace(std::move(path), std::move(rec));
    }
  }
  return c;
}

const StatRecord* StatCache::find(const std::string& path) const {
  auto it = set_.find(path);
  return it == set_.end() ? nullptr : &it->second;
}

Result<void> StatCache::save(const std::filesystem::path& file,
                             const std::vector<std::pair<std::string, StatRecord>>& records,
                             std::size_t max_sets) const {
  std::string body;
  for (const auto& [p, r] : records) append_record(body, p, r);
  std::string out(kMagic);
  out += fmt::format("S {} {}\n", key_, body.size());
  out += body;
  out += '\n';
  std::size_t sets = 1;
  for (const auto& [k, b] : others_) {
    if (sets++ >= max_sets) break;
    out += fmt::format("S {} {}\n", k, b.size());
    out += b;
    out += '\n';
  }
  return write_atomic(file, out, 0600);
}

}  // namespace gedge::runtime::detail
