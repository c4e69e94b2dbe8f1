// What tune.cpp (show, plan) shares with tune_pin.cpp (pin, bench): the topology source flags,
// the plan flags, a device's SSH session and stored pins, and the plan's table.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app.hpp"
#include "gedge/topo.hpp"
#include "gedge/tune.hpp"

namespace gedge::cli::tune {

struct SourceFlags {
  std::string topology;
  std::string device;
  bool live = false;
};

void add_plan_flags(CLI::App* cmd, topo::PlanFlags& f, bool with_cpuset);
// The topology --topology or --device names (stored, or fetched over SSH with --live), else
// this machine's.
Result<topo::Topology> load_source(Ctx& ctx, const SourceFlags& s);
// Work gedge already pinned on a device (the pins table), except `skip_owner` (being re-pinned).
Result<std::vector<std::pair<std::string, topo::IndexSet>>> device_pins(
    Ctx& ctx, const std::string& device, const std::string& skip_owner);
View plan_view(nlohmann::json data);

void register_pin(CLI::App* cmd, Ctx& ctx);
void register_bench(CLI::App* cmd, Ctx& ctx);

}  // namespace gedge::cli::tune
