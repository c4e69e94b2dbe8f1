// libFuzzer target for the service/pipeline loader: arbitrary bytes through parse_spec (YAML
// with limits → valijson → model) and, when they load, through every renderer. Errors must be
// usage errors naming the file; nothing may crash, hang or allocate without bound.
// Build and run (clang >= 16 with libc++ >= 16; Debian 12's clang 14 cannot compile libstdc++
// 12's <expected>, so on this machine the seeded doctest "fuzz:" case in tests/unit/test_svc.cpp
// runs the same corpus, mutated, under ASan+UBSan in CI):
//   clang++ -std=c++2b -g -O1 -fsanitize=fuzzer,address,undefined -Ilibgedge/include \
//     -Ilibgedge/src/svc tests/fuzz/fuzz_svc_spec.cpp
//     libgedge/src/svc/{model,schema,source,render}.cpp \ libgedge/src/core/*.cpp -lyaml-cpp -lfmt
//     -o fuzz_svc_spec
//   ./fuzz_svc_spec -max_total_time=300 -timeout=5 tests/fuzz/corpus/svc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "gedge/svc.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = gedge::svc::parse_spec(text, "fuzz.yaml");
  if (!r) {
    if (r.error().code != gedge::ErrorCode::usage || r.error().message.rfind("fuzz.yaml", 0) != 0)
      std::abort();
    return 0;
  }
  for (const auto& doc : gedge::svc::render_all(*r)) (void)gedge::svc::to_multidoc_yaml({doc});
  return 0;
}
