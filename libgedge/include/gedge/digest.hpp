// SHA-256 through OpenSSL's EVP interface (the CPU's SHA extensions where it has them): the one
// digest helper every module uses (device tokens, runtime chunk and bundle ids).
#pragma once

#include <string>
#include <string_view>

namespace gedge {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace gedge
