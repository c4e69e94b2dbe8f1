// `cluster build`'s checks before anything touches a device: the registry's trust (TLS, CA,
// plain HTTP) probed from here, and the profile's playbook variables (k3s: the airgap artifacts).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>

#include "cluster_detail.hpp"
#include "gedge/document.hpp"
#include "gedge/http.hpp"

namespace gedge::cluster {

namespace fs = std::filesystem;

Result<RegistryTrust> registry_trust(const std::string& registry, const std::string& ca_file,
                                     bool insecure_ok, double timeout_s, Reporter& rep) {
  RegistryTrust t;
  if (!ca_file.empty()) {
    GEDGE_TRY_ASSIGN(t.ca_pem, read_input_file(ca_file, 1u << 20, "--registry-ca file"));
    if (t.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
      return fail(ErrorCode::usage, fmt::format("--registry-ca {}: not a PEM certificate", ca_file),
                  "give the CA certificate (PEM) that signed the registry's certificate");
  }
  http::Options o;
  o.timeout_s = timeout_s;
  o.connect_timeout_s = timeout_s;
  o.max_body = 1u << 20;
  o.tls.ca_pem = t.ca_pem;
  std::string what = "registry " + registry;
  // Any HTTP answer over TLS (200, or the 401 every authenticated registry gives on /v2/) means
  // TLS works with this trust.
  auto tls = http::perform(
      http::Request{"GET", "https://" + registry + "/v2/", {}, std::nullopt, nullptr}, o, what);
  if (tls) return t;
  if (tls.error().code == ErrorCode::interrupted) return std::unexpected(tls.error());
  auto plain = http::perform(
      http::Request{"GET", "http://" + registry + "/v2/", {}, std::nullopt, nullptr}, o, what);
  // A registry that speaks plain HTTP answers /v2/ with 200 or 401. A TLS server asked in plain
  // HTTP answers too (docker-registry: 400 "Client sent an HTTP request to an HTTPS server"):
  // that one speaks TLS, and its certificate is what failed.
  bool speaks_plain = plain && (plain->status == 200 || plain->status == 401);
  if (speaks_plain && tls.error().code != ErrorCode::unreachable) {
    // It speaks plain HTTP: only on request, and said loudly.
    if (!insecure_ok)
      return fail(ErrorCode::auth, fmt::format("registry {} speaks plain HTTP, not TLS", registry),
                  "give it a TLS certificate (and --registry-ca FILE for a private CA), or pass "
                  "--insecure-registry to let every device pull from it without TLS");
    rep.warn(
        fmt::format("registry {}: plain HTTP (--insecure-registry): images travel unencrypted and "
                    "unauthenticated to every device",
                    registry));
    t.insecure = true;
    return t;
  }
  if (tls.error().code == ErrorCode::auth) {
    if (insecure_ok) {
      rep.warn(fmt::format("registry {}: TLS not verified (--insecure-registry): {}", registry,
                           tls.error().message));
      t.insecure = true;
      return t;
    }
    Error e = tls.error();
    e.hint = ca_file.empty()
                 ? "a private CA: pass --registry-ca FILE (it is also installed on every device); "
                   "check the registry's certificate names " +
                       registry
                 : "check that --registry-ca is the CA that signed the registry's certificate, and "
                   "that the certificate names " +
                       registry;
    return std::unexpected(e);
  }
  // Not reachable from here: the devices will require (and verify) TLS.
  rep.warn(fmt::format("registry {} does not answer from here ({}); devices will require TLS",
                       registry, tls.error().message));
  return t;
}

namespace {

// k3s artifacts: each binary's architecture read from its ELF header, images by file name.
Result<nlohmann::json> k3s_artifacts(const fs::path& dir) {
  nlohmann::json bins = nlohmann::json::object(), images = nlohmann::json::object();
  std::vector<std::string> seen;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string fname = entry.path().filename().string();
    seen.push_back(fname);
    if (fname.starts_with("k3s-airgap-images-")) {
      auto arch = fname.substr(
          18, fname.find('.') == std::string::npos ? std::string::npos : fname.find('.') - 18);
      images[arch] = entry.path().string();
      continue;
    }
    if (fname != "k3s" && fname != "k3s-arm64" && fname != "k3s-armhf") continue;
    std::string buf(20, '\0');
    std::ifstream in(entry.path(), std::ios::binary);
    in.read(buf.data(), 20);
    auto head = in.gcount() == 20 ? std::optional<std::string>(buf) : std::nullopt;
    if (!head || head->compare(0, 4,
                               "\x7f"
                               "ELF") != 0)
      return fail(ErrorCode::usage,
                  fmt::format("{} is not an ELF executable", entry.path().string()),
                  "put the k3s release binaries (k3s, k3s-arm64, k3s-armhf) in --artifacts");
    unsigned machine =
        static_cast<unsigned char>((*head)[18]) | (static_cast<unsigned char>((*head)[19]) << 8);
    std::string arch = machine == 0x3E   ? "amd64"
                       : machine == 0xB7 ? "arm64"
                       : machine == 0x28 ? "arm"
                                         : "";
    if (arch.empty())
      return fail(ErrorCode::usage,
                  fmt::format("{}: unsupported ELF machine {:#x}", entry.path().string(), machine));
    bins[arch] = entry.path().string();
  }
  if (bins.empty())
    return fail(
        ErrorCode::not_found,
        fmt::format("no k3s binary in {} (expected k3s, k3s-arm64 or k3s-armhf; found: {})",
                    dir.string(),
                    seen.empty() ? "nothing" : fmt::format("{}", fmt::join(seen, ", "))),
        "download the k3s release binary and k3s-airgap-images-<arch>.tar.zst into that directory");
  if (images.empty())
    return fail(ErrorCode::not_found,
                fmt::format("no k3s-airgap-images-<arch>.tar[.gz|.zst] in {}", dir.string()));
  return nlohmann::json{{"binaries", bins}, {"images", images}};
}

}  // namespace

namespace detail {

// Profile-specific checks made before anything touches a device.
Result<nlohmann::json> profile_vars(const BuildRequest& req,
                                    const std::vector<std::string>& targets, Reporter& rep) {
  nlohmann::json v = {{"gedge_cluster", req.name},
                      {"gedge_profile", req.profile},
                      {"gedge_monitoring", req.monitoring},
                      {"gedge_registry", req.registry}};
  if (!req.registry.empty()) {
    GEDGE_TRY_ASSIGN(auto trust,
                     registry_trust(req.registry, req.registry_ca, req.insecure_registry,
                                    std::min(req.timeout_s, 5.0), rep));
    v["gedge_registry_insecure"] = trust.insecure;
    v["gedge_registry_ca"] = trust.ca_pem;
  }
  // Without --smoke-image, the smoke run checks what any registry offers: the device reaches its
  // /v2/ with TLS and its credentials as configured, and pulls the catalog's first image
  // (playbooks/roles/smoke_test).
  v["gedge_smoke_image"] = req.smoke_image;
  if (req.profile == "k3s" || req.profile == "k8s") {
    v["gedge_server"] = req.server.empty() ? (targets.empty() ? "" : targets.front()) : req.server;
  }
  if (req.profile == "k3s") {
    if (req.artifacts.empty())
      return fail(ErrorCode::usage,
                  "--profile k3s needs --artifacts DIR (the k3s binary and its airgap images)",
                  "see gedge-cluster(1), K3S ARTIFACTS");
    std::error_code ec;
    auto dir = fs::absolute(req.artifacts, ec);
    if (!fs::is_directory(dir))
      return fail(ErrorCode::not_found,
                  fmt::format("artifacts directory '{}' not found", req.artifacts));
    v["gedge_artifacts"] = dir.string();
    GEDGE_TRY_ASSIGN(auto a, k3s_artifacts(dir));
    v["gedge_k3s_binaries"] = a["binaries"];
    v["gedge_k3s_images"] = a["images"];
  }
  return v;
}

}  // namespace detail

}  // namespace gedge::cluster
