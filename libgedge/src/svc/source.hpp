// Internal: a service document is a gedge::Document (core's strict loader: JSON with the line
// of every node, so errors can name FILE:LINE and a field path).
#pragma once

#include <string>

#include "gedge/document.hpp"
#include "gedge/error.hpp"
#include "gedge/svc.hpp"

namespace gedge::svc::detail {

using Source = gedge::Document;
using gedge::field_path;

// One service or pipeline document (a mapping) from `text`.
Result<Source> parse_source(const std::string& text, const std::string& file,
                            const LoadLimits& limits);

// Validates against the embedded schema; the first (most specific) violation as an Error.
Result<void> validate_schema(const Source& src);

}  // namespace gedge::svc::detail
