// Small string helpers every module used to write for itself: one of each.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gedge {

// `s` without leading and trailing characters from `chars` (default: blanks and line ends).
std::string trim(std::string_view s, std::string_view chars = " \t\r\n");

// ASCII lower case (host names, schemes, units); other bytes unchanged.
std::string lower(std::string s);

// A `sep`-separated list ("a, b,,c"): each item trimmed, empty items dropped.
std::vector<std::string> split_list(std::string_view s, char sep = ',',
                                    std::string_view blanks = " \t\r\n");

}  // namespace gedge
