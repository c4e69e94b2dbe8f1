// gedge::test::source_dir(): the one file compiled with the source tree's path
// (tests/CMakeLists.txt).
#include "test_helpers.hpp"

namespace gedge::test {

const char* source_dir() {
  return GEDGE_SOURCE_DIR;
}

}  // namespace gedge::test
