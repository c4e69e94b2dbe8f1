// What openssh.cpp (ssh -G, jump hops) and openssh_cert.cpp (host certificates) share.
#pragma once

#include <string>
#include <vector>

#include "gedge/error.hpp"

namespace gedge::openssh_detail {

struct Captured {
  int status = -1;
  std::string out, err;
};

// fork/execve with stdout and stderr captured; killed after `limit_s`.
Result<Captured> run_capture(const std::vector<std::string>& argv, double limit_s);

// A path as the value of `ssh -o OPTION=VALUE`: ssh splits the value into words (quotes,
// backslashes) and expands %-tokens, so anything but plain characters is double-quoted and '%'
// doubled.
std::string ssh_path_value(const std::string& path);

}  // namespace gedge::openssh_detail
