// Prefix relocation (conda-pack's rules) and content-defined chunking: pure functions.
#include <algorithm>
#include <array>
#include <cstdint>

#include "gedge/runtime.hpp"

namespace gedge::runtime {

namespace {

// A match of `from` must end at a path boundary: /tmp/x/env must not match /tmp/x/env2.
bool boundary_after(std::string_view data, std::size_t end) {
  if (end >= data.size()) return true;
  unsigned char c = static_cast<unsigned char>(data[end]);
  bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.';
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

RelocateOutcome relocate(std::string& data, const std::vector<Rewrite>& rewrites) {
  RelocateOutcome out;
  out.binary = data.find('\0') != std::string::npos;
  std::vector<const Rewrite*> order;
  for (const auto& r : rewrites)
    if (!r.from.empty() && r.from != r.to) order.push_back(&r);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->from.size() > b->from.size(); });
  if (order.empty()) return out;
  bool any = false;
  for (auto* r : order)
    if (data.find(r->from) != std::string::npos) any = true;
  if (!any) return out;
  if (!out.binary) {
    out.changed = substitute(data, order);
    return out;
  }
  // Binary: rewrite inside each NUL-terminated string, padding with NULs to keep every offset.
  std::string result;
  result.reserve(data.size());
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
    std::string seg = data.substr(start, nul - start);
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
  if (!out.fits) return out;  // leave data untouched; the caller fails the pack
  result.append(data, pos, std::string::npos);
  if (out.changed) data.swap(result);
  return out;
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

}  // namespace

std::vector<std::size_t> chunk_boundaries(std::string_view data) {
  static const auto gear = make_gear();
  std::vector<std::size_t> ends;
  if (data.size() <= kWholeFileMax) {
    ends.push_back(data.size());
    return ends;
  }
  std::size_t start = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  while (start < data.size()) {
    std::size_t left = data.size() - start;
    if (left <= kMinChunk) {
      ends.push_back(data.size());
      break;
    }
    std::size_t limit = std::min(left, kMaxChunk);
    uint64_t h = 0;
    std::size_t i = kMinChunk;
    // Warm the hash over the 64 bytes before the minimum so the cut depends only on content.
    for (std::size_t j = kMinChunk - 64; j < kMinChunk; ++j) h = (h << 1) + gear[p[start + j]];
    std::size_t cut = limit;
    for (; i < limit; ++i) {
      h = (h << 1) + gear[p[start + i]];
      if ((h & kMask) == 0) {
        cut = i + 1;
        break;
      }
    }
    ends.push_back(start + cut);
    start += cut;
  }
  return ends;
}

}  // namespace gedge::runtime
