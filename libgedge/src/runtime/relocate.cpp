// Prefix relocation (conda-pack's rules) and content-defined chunking: pure functions.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "gedge/runtime.hpp"

namespace gedge::runtime {

namespace {

// A match of `from` must end at a path boundary: /tmp/x/env must not match /tmp/x/env2.
bool boundary_after(std::string_view data, std::size_t end) {
  if (end >= data.size()) return true;
  unsigned char c = static_cast<unsigned char>(data[end]);
  bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
  return !word;
}

// Replaces every boundary-respecting occurrence of each rewrite in `s` (longest `from` first).
// Builds a new string per rewrite, so many matches in a big file stay linear.
bool substitute(std::string& s, const std::vector<const Rewrite*>& order) {
  bool changed = false;
  for (const Rewrite* r : order) {
    std::size_t pos = 0, copied = 0;
    std::string out;
    bool any = false;
    while ((pos = s.find(r->from, pos)) != std::string::npos) {
      if (!boundary_after(s, pos + r->from.size())) {
        pos += 1;
        continue;
      }
      if (!any) out.reserve(s.size());
      any = true;
      out.append(s, copied, pos - copied);
      out += r->to;
      pos += r->from.size();
      copied = pos;
    }
    if (any) {
      out.append(s, copied, std::string::npos);
      s.swap(out);
      changed = true;
    }
  }
  return changed;
}

}  // namespace

namespace {

// The rewrites that change something, longest `from` first.
std::vector<const Rewrite*> rewrite_order(const std::vector<Rewrite>& rewrites) {
  std::vector<const Rewrite*> order;
  for (const auto& r : rewrites)
    if (!r.from.empty() && r.from != r.to) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(),
                   [](auto* a, auto* b) { return a->from.size() > b->from.size(); });
  return order;
}

bool contains(std::string_view hay, std::string_view needle) {
  return ::memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
}

// Binary rule over `data` (whole NUL-terminated strings, or the input's end): appends the result
// to `result`; a rewritten string is NUL-padded to its original length, so offsets never move.
void relocate_binary(std::string_view data, const std::vector<const Rewrite*>& order,
                     std::string& result, RelocateOutcome& out) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t hit = std::string::npos;
    for (auto* r : order) {
      std::size_t p = data.find(r->from, pos);
      if (p < hit) hit = p;
    }
    if (hit == std::string::npos) break;
    // The C string containing the hit spans [start, nul).
    std::size_t start = data.rfind('\0', hit);
    start = (start == std::string::npos) ? 0 : start + 1;
    if (start < pos) start = pos;
    std::size_t nul = data.find('\0', hit);
    if (nul == std::string::npos) nul = data.size();
    std::string seg(data.substr(start, nul - start));
    std::string orig = seg;
    if (substitute(seg, order)) {
      if (seg.size() > orig.size()) {
        out.fits = false;
        seg = orig;
      } else {
        seg.append(orig.size() - seg.size(), '\0');
        out.changed = true;
      }
    }
    result.append(data, pos, start - pos);
    result += seg;
    pos = nul;
  }
  result.append(data, pos, std::string::npos);
}

}  // namespace

RelocateOutcome relocate(std::string& data, const std::vector<Rewrite>& rewrites) {
  RelocateOutcome out;
  out.binary = std::memchr(data.data(), 0, data.size()) != nullptr;
  auto order = rewrite_order(rewrites);
  if (order.empty()) return out;
  bool any = false;
  for (auto* r : order)
    if (contains(data, r->from)) any = true;
  if (!any) return out;
  if (!out.binary) {
    out.changed = substitute(data, order);
    return out;
  }
  std::string result;
  result.reserve(data.size());
  relocate_binary(data, order, result, out);
  if (!out.fits) return out;  // leave data untouched; the caller fails the pack
  if (out.changed) data.swap(result);
  return out;
}

Relocator::Relocator(const std::vector<Rewrite>& rewrites, bool binary)
    : order_(rewrite_order(rewrites)), binary_(binary) {
  if (!binary_)
    for (auto* r : order_) stages_.push_back({r, {}, 0});
}

// Text: stage i substitutes rewrite i over the output of stage i - 1, as substitute() does over
// the whole string; it holds back only what a match still arriving could change.
void Relocator::run(std::size_t i, bool final, std::string& out) {
  if (i == stages_.size()) return;
  Stage& st = stages_[i];
  const std::string& from = st.rw->from;
  std::string& s = st.pending;
  std::string emitted;
  std::size_t pos = st.scan, copied = 0, safe = 0;
  for (;;) {
    std::size_t p = s.find(from, pos);
    if (p == std::string::npos) {
      safe = final ? s.size()
                   : std::max(pos, s.size() >= from.size() ? s.size() - from.size() + 1 : 0);
      break;
    }
    std::size_t end = p + from.size();
    if (end >= s.size() && !final) {  // the byte after the match decides: wait for it
      safe = p;
      break;
    }
    if (!boundary_after(s, end)) {
      pos = p + 1;
      continue;
    }
    emitted.append(s, copied, p - copied);
    emitted += st.rw->to;
    pos = copied = end;
    changed_ = true;
  }
  safe = std::max(safe, copied);
  emitted.append(s, copied, safe - copied);
  s.erase(0, safe);
  st.scan = std::max(pos, safe) - safe;
  if (i + 1 == stages_.size()) {
    out += emitted;
  } else {
    stages_[i + 1].pending += emitted;
    run(i + 1, final, out);
  }
}

void Relocator::feed(std::string_view in, std::string& out) {
  if (order_.empty()) {
    out += in;
    return;
  }
  if (!binary_) {
    stages_[0].pending += in;
    run(0, false, out);
    return;
  }
  // Binary: complete NUL-terminated strings are final; keep the bytes after the last NUL.
  carry_ += in;
  std::size_t last = carry_.rfind('\0');
  if (last == std::string::npos) return;
  RelocateOutcome o;
  relocate_binary(std::string_view(carry_).substr(0, last + 1), order_, out, o);
  changed_ = changed_ || o.changed;
  fits_ = fits_ && o.fits;
  carry_.erase(0, last + 1);
}

void Relocator::finish(std::string& out) {
  if (order_.empty()) return;
  if (!binary_) {
    run(0, true, out);
    return;
  }
  RelocateOutcome o;
  relocate_binary(carry_, order_, out, o);
  changed_ = changed_ || o.changed;
  fits_ = fits_ && o.fits;
  carry_.clear();
}

namespace {

// Gear table for the rolling hash, from a fixed seed so boundaries are stable across runs.
std::array<uint64_t, 256> make_gear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x67656467652d7274ull;  // "gedge-rt"
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return g;
}

constexpr std::size_t kWholeFileMax = 1u << 20;  // files up to 1 MiB are one chunk
constexpr std::size_t kMinChunk = 256u << 10;
constexpr std::size_t kMaxChunk = 4u << 20;
constexpr uint64_t kMask = (1ull << 20) - 1;  // ~1 MiB average past the minimum

// The length of the chunk starting at p, `left` bytes available (all of them when fewer than
// kMaxChunk): the cut depends only on the bytes in [p, p + min(left, kMaxChunk)).
std::size_t next_cut(const unsigned char* p, std::size_t left) {
  static const auto gear = make_gear();
  if (left <= kMinChunk) return left;
  std::size_t limit = std::min(left, kMaxChunk);
  uint64_t h = 0;
  // Warm the hash over the 64 bytes before the minimum so the cut depends only on content.
  for (std::size_t j = kMinChunk - 64; j < kMinChunk; ++j) h = (h << 1) + gear[p[j]];
  for (std::size_t i = kMinChunk; i < limit; ++i) {
    h = (h << 1) + gear[p[i]];
    if ((h & kMask) == 0) return i + 1;
  }
  return limit;
}

}  // namespace

std::vector<std::size_t> chunk_boundaries(std::string_view data) {
  std::vector<std::size_t> ends;
  if (data.size() <= kWholeFileMax) {
    ends.push_back(data.size());
    return ends;
  }
  std::size_t start = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  while (start < data.size()) {
    start += next_cut(p + start, data.size() - start);
    ends.push_back(start);
  }
  return ends;
}

std::size_t Chunker::max_chunk() {
  return kMaxChunk;
}
std::size_t Chunker::whole_file_max() {
  return kWholeFileMax;
}

std::size_t Chunker::cut() const {
  return next_cut(reinterpret_cast<const unsigned char*>(buf_.data()) + off_, buf_.size() - off_);
}

void Chunker::append(std::string_view in) {
  // Drop what was emitted before growing, so the buffer stays near kMaxChunk + one block.
  if (off_ > 0 && buf_.size() + in.size() > buf_.capacity()) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_ += in;
}

}  // namespace gedge::runtime
