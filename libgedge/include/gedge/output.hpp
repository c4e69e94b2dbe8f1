// The output model: every command returns a View (typed data as JSON plus how to show it as a
// table); one renderer prints it as table, json or yaml.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "gedge/error.hpp"

namespace gedge {

enum class Format { table, json, yaml };

// Parses "table" | "json" | "yaml"; anything else is a usage error.
Result<Format> parse_format(std::string_view s);

struct Column {
  std::string header;   // shown upper-case in the table
  std::string pointer;  // JSON pointer into one row, e.g. "/facts/arch"
};

struct View {
  nlohmann::json data;          // what json/yaml print, verbatim
  std::vector<Column> columns;  // table columns; empty: key/value listing of `data`
  std::string rows;             // JSON pointer to the row array inside data ("" = data itself)
  std::string footer;           // optional human line printed under the table
  nlohmann::json table;         // table rows when they differ from `data` (null: use data/rows)

  // The same view with separate table rows (json/yaml still print `data`).
  View with_rows(nlohmann::json table_rows) && {
    table = std::move(table_rows);
    rows.clear();
    return std::move(*this);
  }
};

struct RenderOptions {
  Format format = Format::table;
  bool color = false;
};

void render(const View& view, const RenderOptions& opts, std::ostream& out);

// JSON -> YAML text (block style, strings quoted when YAML would read them as something else).
std::string to_yaml(const nlohmann::json& value);

// Renders a JSON scalar for a table cell: strings bare, null as "-", arrays joined by ",".
std::string cell_text(const nlohmann::json& value);

// The error object printed on stderr under -o json.
nlohmann::json error_json(const Error& e);

}  // namespace gedge
