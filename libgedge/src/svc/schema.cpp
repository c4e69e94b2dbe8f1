// Validation against schemas/service.schema.json with valijson (Debian libvalijson-dev), then a
// translation of the most specific violation into "FILE:LINE: field.path: what".
#include <fmt/format.h>

#include <memory>
#include <optional>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "gedge/quantity.hpp"
#include "schema_text.hpp"
#include "source.hpp"

namespace gedge::svc {

const std::string& schema_text() {
  static const std::string text = detail::kServiceSchema;
  return text;
}

namespace detail {
namespace {

const nlohmann::json& schema_json() {
  static const nlohmann::json j = nlohmann::json::parse(schema_text());
  return j;
}

const valijson::Schema& compiled_schema() {
  static const std::unique_ptr<valijson::Schema> schema = [] {
    auto s = std::make_unique<valijson::Schema>();
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(schema_json());
    parser.populateSchema(adapter, *s);
    return s;
  }();
  return *schema;
}

const nlohmann::json* deref(const nlohmann::json* s) {
  for (int i = 0; s && i < 8 && s->is_object() && s->contains("$ref"); ++i) {
    std::string ref = (*s)["$ref"].get<std::string>();
    if (!ref.starts_with("#/")) return nullptr;
    s = &schema_json().at(nlohmann::json::json_pointer(ref.substr(1)));
  }
  return s;
}

// The schema node describing the instance at `tokens` (properties / additionalProperties / items).
const nlohmann::json* schema_at(const nlohmann::json& doc, const std::vector<std::string>& tokens) {
  const nlohmann::json* s = deref(&schema_json());
  const nlohmann::json* inst = &doc;
  for (const auto& t : tokens) {
    if (!s || !inst) return nullptr;
    if (inst->is_array()) {
      s = s->contains("items") ? deref(&(*s)["items"]) : nullptr;
      std::size_t idx = std::strtoul(t.c_str(), nullptr, 10);
      inst = idx < inst->size() ? &(*inst)[idx] : nullptr;
    } else {
      if (s->contains("properties") && (*s)["properties"].contains(t))
        s = deref(&(*s)["properties"][t]);
      else if (s->contains("additionalProperties") && (*s)["additionalProperties"].is_object())
        s = deref(&(*s)["additionalProperties"]);
      else
        s = nullptr;
      inst = inst->is_object() && inst->contains(t) ? &(*inst)[t] : nullptr;
    }
  }
  return s;
}

std::string type_names(const nlohmann::json& t) {
  auto one = [](const std::string& n) {
    return n == "object" ? std::string("mapping") : n == "array" ? std::string("list") : n;
  };
  if (t.is_string()) return one(t.get<std::string>());
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (i) out += i + 1 == t.size() ? " or " : ", ";
    out += one(t[i].get<std::string>());
  }
  return out;
}

std::string json_kind(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "list";
  return "mapping";
}

std::string num(const nlohmann::json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  return v.dump();
}

}  // namespace

namespace {

std::string pointer_token(const std::string& t) {
  std::string esc;
  for (char c : t)
    esc += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return esc;
}

// Keys have no schema of their own; longer ones are refused before valijson sees them.
constexpr std::size_t kMaxKey = 256;

// Refuses, before valijson runs, every string longer than its schema's maxLength (and every key
// longer than kMaxKey): valijson checks all of a string's constraints, and its std::regex
// recurses per character, so a 30 KB string in a patterned field overflowed the stack (SIGSEGV).
Result<void> check_lengths(const Source& src, const nlohmann::json& v,
                           std::vector<std::string>& tokens, const std::string& ptr) {
  if (v.is_string()) {
    const nlohmann::json* sch = schema_at(src.doc, tokens);
    if (sch && sch->contains("maxLength") && (*sch)["maxLength"].is_number_unsigned()) {
      auto max = (*sch)["maxLength"].get<std::size_t>();
      // maxLength counts characters; bytes >= characters, so count UTF-8 lead bytes only.
      std::size_t chars = 0;
      for (unsigned char c : v.get_ref<const std::string&>()) chars += (c & 0xC0) != 0x80;
      if (chars > max)
        return std::unexpected(
            src.error_at(ptr, fmt::format("longer than {} characters ({})", max, chars)));
    }
    return {};
  }
  if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      tokens.push_back(std::to_string(i));
      auto r = check_lengths(src, v[i], tokens, ptr + "/" + tokens.back());
      tokens.pop_back();
      if (!r) return r;
    }
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string child = ptr + "/" + pointer_token(it.key());
      if (it.key().size() > kMaxKey)
        return std::unexpected(src.error_at(
            ptr, fmt::format("a key longer than {} bytes ({})", kMaxKey, it.key().size())));
      tokens.push_back(it.key());
      auto r = check_lengths(src, it.value(), tokens, child);
      tokens.pop_back();
      if (!r) return r;
    }
  }
  return {};
}

// The text between the first `open` and the last `close` of `d` ("" when absent); the messages
// quote keys that may be long, so no std::regex here.
std::optional<std::string> quoted_after(const std::string& d, std::string_view lead,
                                        std::string_view close) {
  auto a = d.find(lead);
  if (a == std::string::npos) return std::nullopt;
  a += lead.size();
  auto b = d.rfind(close);
  if (b == std::string::npos || b < a) return std::nullopt;
  return d.substr(a, b - a);
}

}  // namespace

Result<void> validate_schema(const Source& src) {
  {
    std::vector<std::string> tokens;
    GEDGE_TRY(check_lengths(src, src.doc, tokens, ""));
  }
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(src.doc);
  if (validator.validate(compiled_schema(), target, &results)) return {};

  // Pick the deepest error: the parents only say "failed to validate item #i".
  valijson::ValidationResults::Error best;
  std::size_t best_depth = 0;
  bool have = false;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    bool cascade = e.description.starts_with("Failed to validate item") ||
                   e.description.starts_with("Failed to validate against schema associated");
    std::size_t depth = e.context.size() * 2 + (cascade ? 0 : 1);
    if (!have || depth > best_depth) {
      best = e;
      best_depth = depth;
      have = true;
    }
  }
  // Context is ["<root>", "[key]", "[0]", ...]: strip the brackets.
  std::vector<std::string> tokens;
  for (std::size_t i = 1; i < best.context.size(); ++i) {
    std::string t = best.context[i];
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
    tokens.push_back(t);
  }
  std::string ptr;
  const nlohmann::json* inst = &src.doc;
  for (const auto& t : tokens) {
    ptr += "/" + pointer_token(t);
    if (inst && inst->is_array()) {
      std::size_t idx = std::strtoul(t.c_str(), nullptr, 10);
      inst = idx < inst->size() ? &(*inst)[idx] : nullptr;
    } else {
      inst = inst && inst->is_object() && inst->contains(t) ? &(*inst)[t] : nullptr;
    }
  }
  const nlohmann::json* sch = schema_at(src.doc, tokens);
  const std::string& d = best.description;
  if (auto key = quoted_after(
          d, "could not be validated using 'properties' or 'additionalProperties' constraints: '",
          "'.")) {
    std::string esc = pointer_token(*key);
    std::vector<std::string> known;
    if (sch && sch->contains("properties"))
      for (auto it = (*sch)["properties"].begin(); it != (*sch)["properties"].end(); ++it)
        known.push_back(it.key());
    return std::unexpected(src.error_at(
        ptr + "/" + esc, "unknown field",
        known.empty() ? "" : fmt::format("known fields here: {}", fmt::join(known, ", "))));
  }
  if (auto key = quoted_after(d, "Missing required property '", "'."))
    return std::unexpected(src.error_at(ptr, fmt::format("missing required field '{}'", *key)));
  if (d.find("'type' constraint") != std::string::npos && sch && sch->contains("type"))
    return std::unexpected(
        src.error_at(ptr, fmt::format("expected {}, got {}", type_names((*sch)["type"]),
                                      inst ? json_kind(*inst) : "nothing")));
  if (d.find("enum values") != std::string::npos && sch && sch->contains("enum")) {
    std::vector<std::string> vals;
    for (const auto& v : (*sch)["enum"])
      vals.push_back(v.is_string() ? v.get<std::string>() : v.dump());
    return std::unexpected(
        src.error_at(ptr, fmt::format("'{}' is not one of: {}",
                                      inst && inst->is_string() ? inst->get<std::string>()
                                                                : (inst ? inst->dump() : ""),
                                      fmt::join(vals, ", "))));
  }
  if (d.find("'pattern' constraint") != std::string::npos && sch) {
    std::string v = inst && inst->is_string() ? inst->get<std::string>() : "";
    std::string pat = sch->value("pattern", "");
    std::string hint;
    if (pat.starts_with("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
      hint =
          "names are lowercase letters, digits and '-', starting and ending with a letter or digit";
    if (pat.find("[KMGTPE]i") != std::string::npos) {  // a quantity: the one parser's words
      auto q = parse_resource_quantity(nlohmann::json(v), "quantity");
      return std::unexpected(
          src.error_at(ptr, fmt::format("invalid quantity '{}'", v), q ? "" : q.error().hint));
    }
    return std::unexpected(src.error_at(ptr, fmt::format("invalid value '{}'", v), hint));
  }
  if (d.starts_with("Expected number greater") && sch && sch->contains("minimum"))
    return std::unexpected(
        src.error_at(ptr, fmt::format("must be at least {}", num((*sch)["minimum"]))));
  if (d.starts_with("Expected number less") && sch && sch->contains("maximum"))
    return std::unexpected(
        src.error_at(ptr, fmt::format("must be at most {}", num((*sch)["maximum"]))));
  std::string text = d;
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  if (text.ends_with(".")) text.pop_back();
  return std::unexpected(src.error_at(ptr, text));
}

}  // namespace detail
}  // namespace gedge::svc
