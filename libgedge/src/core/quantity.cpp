// Kubernetes' quantity grammar, parsed exactly (no strtod leniency: "1e3k", " 1", "0x10",
// "inf" and "512K" are all refused, as the API server refuses them).
#include "gedge/quantity.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace gedge {

namespace {

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// <signedNumber> at s[pos...]: returns the value and advances pos; nullopt on no digits.
std::optional<long double> signed_number(std::string_view s, std::size_t& pos,
                                         bool allow_fraction) {
  std::size_t p = pos;
  bool neg = false;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) neg = s[p++] == '-';
  long double v = 0;
  std::size_t int_digits = 0, frac_digits = 0;
  while (p < s.size() && digit(s[p])) {
    v = v * 10 + (s[p++] - '0');
    ++int_digits;
    if (int_digits > 40) return std::nullopt;
  }
  if (allow_fraction && p < s.size() && s[p] == '.') {
    ++p;
    long double scale = 0.1L;
    while (p < s.size() && digit(s[p])) {
      v += (s[p++] - '0') * scale;
      scale /= 10;
      if (++frac_digits > 40) return std::nullopt;
    }
  }
  if (int_digits == 0 && frac_digits == 0) return std::nullopt;
  pos = p;
  return neg ? -v : v;
}

constexpr long double kMaxBase = 9223372036854775807.0L;  // 2^63 - 1

std::string hint_for(std::string_view text) {
  if (!text.empty() && (text.back() == 'K' || text.ends_with("KB") || text.ends_with("Kb")))
    return "Kubernetes spells kilo 'k' (512k = 512000) and kibi 'Ki' (512Ki = 524288)";
  if (text.ends_with("B") || text.ends_with("b") || text.ends_with("iB"))
    return "quantities take no 'B': 512Mi, 1Gi, 1.5G, 1e9";
  return "quantities look like 500m, 2, 0.5, 1e9, 512Mi, 1.5Gi, 128974848";
}

Result<long double> amount(const nlohmann::json& v, std::string_view what, long double base_scale) {
  long double x = 0;
  std::string shown;
  if (v.is_number()) {
    x = v.get<double>();
    shown = v.dump();
    if (!std::isfinite(static_cast<double>(x)))
      return fail(ErrorCode::usage, fmt::format("{}: invalid quantity {}", what, shown));
  } else if (v.is_string()) {
    shown = v.get<std::string>();
    auto q = quantity_value(shown);
    if (!q)
      return fail(ErrorCode::usage, fmt::format("{}: invalid quantity '{}'", what, shown),
                  hint_for(shown));
    x = *q;
  } else {
    return fail(
        ErrorCode::usage,
        fmt::format("{}: expected a quantity (a string like 500m or 1Gi, or a number), got {}",
                    what, v.type_name()),
        hint_for(""));
  }
  if (x < 0)
    return fail(ErrorCode::usage, fmt::format("{}: quantity '{}' is negative", what, shown));
  if (x * base_scale > kMaxBase)
    return fail(ErrorCode::usage, fmt::format("{}: quantity '{}' is out of range", what, shown),
                "Kubernetes keeps quantities as 64-bit integers of their smallest unit");
  return x;
}

}  // namespace

std::optional<long double> quantity_value(std::string_view s) {
  std::size_t pos = 0;
  auto num = signed_number(s, pos, true);
  if (!num) return std::nullopt;
  std::string_view suf = s.substr(pos);
  long double mult = 1;
  if (suf.empty()) {
  } else if (suf.size() == 2 && suf[1] == 'i') {
    static constexpr std::string_view kBin = "KMGTPE";
    auto at = kBin.find(suf[0]);
    if (at == std::string_view::npos) return std::nullopt;
    mult = std::ldexp(1.0L, static_cast<int>(10 * (at + 1)));
  } else if (suf[0] == 'e' || suf[0] == 'E') {
    std::size_t p = 1;
    auto e = signed_number(suf, p, false);
    if (!e || p != suf.size() || *e > 300 || *e < -300) return std::nullopt;
    mult = std::pow(10.0L, *e);
  } else if (suf.size() == 1) {
    switch (suf[0]) {
      case 'n':
        mult = 1e-9L;
        break;
      case 'u':
        mult = 1e-6L;
        break;
      case 'm':
        mult = 1e-3L;
        break;
      case 'k':
        mult = 1e3L;
        break;
      case 'M':
        mult = 1e6L;
        break;
      case 'G':
        mult = 1e9L;
        break;
      case 'T':
        mult = 1e12L;
        break;
      case 'P':
        mult = 1e15L;
        break;
      case 'E':
        mult = 1e18L;
        break;
      default:
        return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return *num * mult;
}

Result<double> parse_cpu_quantity(const nlohmann::json& v, std::string_view what) {
  GEDGE_TRY_ASSIGN(long double x, amount(v, what, 1000));
  return static_cast<double>(x);
}

Result<double> parse_memory_quantity(const nlohmann::json& v, std::string_view what) {
  GEDGE_TRY_ASSIGN(long double x, amount(v, what, 1));
  return static_cast<double>(x);
}

Result<double> parse_resource_quantity(const nlohmann::json& v, std::string_view what) {
  GEDGE_TRY_ASSIGN(long double x, amount(v, what, 1000));
  return static_cast<double>(x);
}

int64_t whole_bytes(double bytes) {
  if (!(bytes > 0)) return 0;
  long double c = std::ceil(static_cast<long double>(bytes) - 1e-6L);
  if (c >= kMaxBase) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(c);
}

std::string quantity_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  if (v.is_number()) {
    double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e18)
      return fmt::format("{}", static_cast<long long>(d));
    if (std::isfinite(d)) {
      // Milli precision is what Kubernetes keeps for CPU; finer amounts keep their digits.
      double milli = d * 1000;
      if (std::floor(milli) == milli && std::fabs(milli) < 9e18)
        return fmt::format("{}m", static_cast<long long>(milli));
      return fmt::format("{}", d);
    }
  }
  return v.dump();
}

}  // namespace gedge
