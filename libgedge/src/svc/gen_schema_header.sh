#!/bin/sh
# Regenerates schema_text.hpp from schemas/service.schema.json (the unit test checks they match).
set -eu
here=$(dirname "$0")
{
  echo "// Generated from schemas/service.schema.json by gen_schema_header.sh; do not edit."
  echo "#pragma once"
  echo "namespace gedge::svc::detail {"
  echo "inline constexpr const char* kServiceSchema = R\"SCHEMA("
  cat "$here/../../../schemas/service.schema.json"
  echo ")SCHEMA\";"
  echo "}  // namespace gedge::svc::detail"
} > "$here/schema_text.hpp"
