// gedge's one-line version, "gedge 0.1.0 (v0.1.0-12-gabcdef123456-dirty)", for --version.
#pragma once

#include <string>

namespace gedge::cli {

std::string version_line();

}  // namespace gedge::cli
