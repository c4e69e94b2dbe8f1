// What the Kubernetes renderer (render.cpp) and the container-host plan (render_hosts.cpp)
// share.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <utility>

#include "gedge/svc.hpp"
#include "gedge/text.hpp"

namespace gedge::svc::detail::render {

inline constexpr const char* kRuntimeRoot = "/var/lib/gedge/runtimes";

nlohmann::json labels_json(const std::map<std::string, std::string>& m);
// Requests/limits of container `i`, with `pin` applied to container 0 (Guaranteed, integer CPU).
std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>>
effective_resources(const Service& s, std::size_t i);

}  // namespace gedge::svc::detail::render
