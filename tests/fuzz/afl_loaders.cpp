// AFL++ harness for gedge's input loaders (issue 16): the first byte picks the loader, the rest
// is the input (a file argument, or stdin): 0 service/pipeline spec (svc::parse_spec), 1 scheduler
// state (sched::parse_state), 2 scheduler workload (sched::parse_workload), 3 Kubernetes manifests
// (manifest::parse), 4 kubeconfig (k8s::parse_kubeconfig). A loader may refuse anything, but only
// with an Error: a crash, an abort, an uncaught exception or a hang is a finding. Plain main() over
// stdin, so every AFL++ instrumentation mode (also afl-as, without a persistent loop) links it.
// Build and run (GCC plugin mode: afl-g++-fast instruments with g++ 12 itself, so libstdc++ 12's
// <expected> compiles, which clang 14 cannot): tests/fuzz/afl.sh [SECONDS]
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "gedge/k8s.hpp"
#include "gedge/manifest.hpp"
#include "gedge/sched.hpp"
#include "gedge/svc.hpp"

namespace {

void one(const std::string& data) {
  if (data.empty()) return;
  std::string text = data.substr(1);
  switch (static_cast<unsigned char>(data[0]) % 5) {
    case 0:
      (void)gedge::svc::parse_spec(text, "fuzz.yaml");
      break;
    case 1:
      (void)gedge::sched::parse_state(text, "fuzz.json");
      break;
    case 2:
      (void)gedge::sched::parse_workload(text, "fuzz.yaml");
      break;
    case 3:
      (void)gedge::manifest::parse(text, "fuzz.yaml");
      break;
    default:
      (void)gedge::k8s::parse_kubeconfig(text, "", "/nonexistent-fuzz-dir");
      break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {  // replay files (findings, the corpus) without AFL
    for (int i = 1; i < argc; ++i) {
      FILE* f = std::fopen(argv[i], "rb");
      if (!f) continue;
      std::string data;
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) data.append(buf, n);
      std::fclose(f);
      one(data);
    }
    return 0;
  }
  // One input on stdin per run (AFL's fork server; afl-as mode has no persistent loop).
  one(std::string(std::istreambuf_iterator<char>(std::cin), {}));
  return 0;
}
