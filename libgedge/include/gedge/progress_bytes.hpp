// Progress counted in bytes, without widening the Reporter interface: a task named with
// bytes_task() reports done/total in bytes, and the CLI shows it with sizes, rate and ETA.
// A "(detail)" after the name ("pushing (1/3 devices done)") may change between calls: the CLI
// keeps counting it as the same task.
#pragma once

#include <string>
#include <string_view>

namespace gedge {

inline constexpr std::string_view kBytesTaskSuffix = " [bytes]";

// rep.progress(bytes_task("packing"), bytes_done, bytes_total)
inline std::string bytes_task(std::string_view task) {
  std::string t(task);
  t += kBytesTaskSuffix;
  return t;
}

}  // namespace gedge
