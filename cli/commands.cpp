// The command table: every noun, in help order. Adding a noun is one line here plus cli/<noun>.cpp.
#include "app.hpp"

namespace gedge::cli {

const std::vector<NounSpec>& nouns() {
  static const std::vector<NounSpec> table = {
      {"init", "Create GEDGE_HOME: inventory and gedge's own SSH key pair", register_init},
      {"device", "Register, check and command edge devices over SSH", register_device},
      {"cluster", "Build device clusters with Ansible or register Kubernetes clusters",
       register_cluster},
      {"runtime", "Pack and push content-addressed GPU runtime bundles", register_runtime},
      {"svc", "Render and deploy services from the short service schema", register_svc},
      {"sched", "Place services and pipelines across clusters and nodes", register_sched},
      {"tune", "Read the hardware topology and pin work to cores, NUMA nodes and GPUs",
       register_tune},
      {"completion", "Print a shell completion script (bash, zsh, fish)", register_completion},
      {"version", "Print gedge's version and the libraries it was built with", register_version},
  };
  return table;
}

}  // namespace gedge::cli
