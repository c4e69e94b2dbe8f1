// Content-addressed GPU runtime bundles: pack trees (conda env, CUDA, cuDNN, ...) relocated to a
// mount prefix into a chunk store, list/verify/gc them, materialise them into a directory (an NFS
// export or a device's runtime root) sending only missing chunks, and render the mounts and
// PATH/LD_LIBRARY_PATH wiring for Kubernetes, podman or a shell.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gedge/digest.hpp"
#include "gedge/error.hpp"
#include "gedge/inventory.hpp"
#include "gedge/paths.hpp"
#include "gedge/report.hpp"

namespace gedge::runtime {

// Manifest format this gedge writes and the newest it reads. Format 2 names a file of several
// chunks by its chunk list (see runtime/manifest.hpp); format 1 by the SHA-256 of its bytes.
inline constexpr int kManifestFormat = 2;
// Default root of materialised bundles on devices.
inline constexpr const char* kDefaultRoot = "/var/lib/gedge/runtimes";

struct ComponentSpec {
  std::string role;           // env, cuda, cudnn, tensorrt, nccl, data, or free-form
  std::filesystem::path dir;  // source tree
};

struct PackRequest {
  std::string name;
  std::vector<ComponentSpec> components;  // a bare DIR becomes role = its base name
  std::string prefix;                     // mount prefix; "" = /opt/gedge/rt/<name>
  int level = 3;                          // zstd level
  unsigned jobs = 0;                      // worker threads; 0 = every core
  bool dry_run =
      false;  // read, relocate and hash, but write nothing (no chunk, no record, no cache)
  bool use_cache = true;  // reuse the stat cache (path, size, mtime, ctime, inode -> chunks)
  // Record setuid/setgid/sticky and group/other-write bits as they are (recorded in the
  // manifest); by default they are dropped and files materialise read-only.
  bool keep_special_modes = false;
};

struct PackResult {
  std::string id;
  std::string name;
  std::string prefix;
  bool created = true;  // false: an identical bundle was already recorded
  uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0;
  uint64_t bytes_read = 0;    // bytes of regular file content packed (incl. bytes_cached)
  uint64_t bytes_unique = 0;  // uncompressed bytes of the bundle's distinct chunks
  uint64_t bytes_stored = 0;  // compressed bytes newly written to the store by this pack
  uint64_t chunks = 0, chunks_new = 0;
  uint64_t bytes_new = 0;     // uncompressed bytes of the chunks not yet in the store
  uint64_t files_cached = 0;  // files whose chunks came from the stat cache (not re-read)
  uint64_t bytes_cached = 0;  // their bytes (counted in bytes_read, but not read again)
  bool dry_run = false;       // nothing was written; chunks_new/bytes_new are what would be
  std::vector<std::string> relocated;       // files whose prefix was rewritten
  std::vector<std::string> outside_links;   // symlinks pointing outside the bundle
  std::vector<std::string> modes_stripped;  // "path (04755 -> 0755)" for each mode pack reduced
  bool keep_special_modes = false;
  nlohmann::json versions, env, requires_;
  nlohmann::json to_json() const;
};

// Packs the component trees into the chunk store under paths.runtimes and records the bundle.
// Errors: usage (bad name/role, device files, non-UTF-8 names, prefix too long for a binary),
// failure (unreadable files, I/O), interrupted.
Result<PackResult> pack(const Paths& paths, Inventory& inv, const PackRequest& req, Reporter& rep);

// A recorded bundle.
struct Bundle {
  std::string id;
  std::string name;
  std::string created_at;
  nlohmann::json manifest;
};

// Finds a bundle by full id, unique id prefix (>= 4 chars) or name (newest with that name).
// not_found / conflict (ambiguous prefix); failure when the manifest is from a newer gedge.
Result<Bundle> find_bundle(Inventory& inv, std::string_view ref);

// One summary object per bundle, newest first.
Result<nlohmann::json> list_bundles(Inventory& inv);
// The summary of one bundle (what `ls` shows) plus versions, env, components.
nlohmann::json bundle_summary(const Bundle& b);

// Re-hashes every chunk of the bundle in the local store. `corrupted`/`missing` name chunks
// and the files that use them.
struct VerifyResult {
  std::string id;
  uint64_t chunks = 0;
  std::vector<std::string> corrupted, missing;
  std::vector<std::string> bad_files;  // files using a corrupted or missing chunk
  nlohmann::json to_json() const;
};
Result<VerifyResult> verify(const Paths& paths, const Bundle& b, Reporter& rep);

// Removes chunks no recorded bundle references (never a referenced one).
struct GcResult {
  uint64_t kept = 0, removed = 0, bytes_freed = 0;
  bool dry_run = false;
  nlohmann::json to_json() const;
};
Result<GcResult> gc(const Paths& paths, Inventory& inv, bool dry_run, Reporter& rep);

// Forgets recorded bundles (their chunks stay until gc). `ref` is an id or unique prefix (that
// bundle) or a name (every bundle of that name; with `keep`, all but the `keep` newest). A bundle
// a recorded service's `runtime:` still resolves to is refused (conflict) unless `force`.
// not_found when nothing matches.
struct RemoveRequest {
  std::string ref;
  std::optional<int> keep;
  bool dry_run = false;
  bool force = false;
};
struct RemoveResult {
  nlohmann::json removed = nlohmann::json::array();  // [{id, name, created_at}] newest first
  nlohmann::json kept = nlohmann::json::array();
  bool dry_run = false;
  nlohmann::json to_json() const;
};
Result<RemoveResult> remove_bundles(Inventory& inv, const RemoveRequest& req);

// Materialises a bundle under `root` (local directory): chunks the target store lacks are copied
// to root/.gedge/chunks, files are built (identical files hardlinked through root/.gedge/objects),
// hashes verified, and root/<id> appears by one rename when complete. An existing root/<id> is
// verified and repaired.
struct PushResult {
  std::string target;  // "dir:<root>" or a device name
  std::string root;
  std::string state;  // created | verified | repaired
  uint64_t bytes_sent = 0, chunks_sent = 0, chunks_skipped = 0;
  uint64_t files = 0, files_linked = 0, files_repaired = 0;
  std::vector<std::string> repaired;
  std::optional<bool>
      compressed;  // chunks travelled zstd-compressed (false: the target has no zstd)
  // dry run: state is would_create | would_verify, bytes_sent/chunks_sent what would be sent, and
  // chunks_to_send names those chunks; nothing is written on the target.
  bool dry_run = false;
  std::vector<std::string> chunks_to_send;
  nlohmann::json to_json() const;
};
Result<PushResult> push_to_dir(const Paths& paths, const Bundle& b,
                               const std::filesystem::path& root, Reporter& rep,
                               bool dry_run = false);
// Checks a materialised copy under root without changing it; the names of bad files in
// VerifyResult::bad_files.
Result<VerifyResult> verify_dir(const Bundle& b, const std::filesystem::path& root, Reporter& rep);

// push --device/--cluster over SSH (sudo on the device, python3 there). Runs devices in
// parallel; one outcome per device, in the order given.
struct RemotePushRequest {
  std::vector<std::string> devices;
  std::string root = kDefaultRoot;
  bool dry_run = false;  // only ask each target what it lacks (see PushResult)
  int parallel = 16;
  double timeout_s = 30;  // connect timeout; the session budget is at least 30 minutes
};
struct RemoteOutcome {
  std::string device;
  std::optional<PushResult> result;
  std::optional<Error> error;
};
std::vector<RemoteOutcome> push_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                       const RemotePushRequest& req, Reporter& rep);
// The members of a cluster (not_found when none).
Result<std::vector<std::string>> cluster_devices(Inventory& inv, const std::string& cluster);
// Checks the copy on a device without changing it (bad files in VerifyResult::bad_files).
Result<VerifyResult> verify_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                   const std::string& device, const std::string& root,
                                   double timeout_s);

// Mount specs (pure).
enum class MountFormat { k8s, podman, sh };
struct MountRequest {
  MountFormat format = MountFormat::podman;
  std::string root = kDefaultRoot;  // where <id>/ lives on the host (hostPath, podman -v)
  std::string pvc;                  // k8s: PersistentVolumeClaim name (else hostPath)
  std::string sub_path;             // k8s: path of the runtimes root inside the PVC
};
// The text for -o k8s (YAML), podman (one shell-quoted line of flags) or sh (a path.sh).
Result<std::string> render_mounts(const Bundle& b, const MountRequest& req);
// The env wiring as NAME -> value (PATH ends with the usual system dirs).
std::vector<std::pair<std::string, std::string>> env_wiring(const nlohmann::json& manifest);

// Driver check (pure): the bundle's CUDA requirement against a device's facts JSON
// (gpus[].driver). verdict: ok | compat (minor-version compatibility only) | too_old | no_cuda |
// unknown (no driver in the facts).
nlohmann::json check_driver(const nlohmann::json& manifest, const nlohmann::json& facts);

// check_driver against the facts recorded for device `device` (not_found when unknown).
Result<nlohmann::json> check_on_device(Inventory& inv, const Bundle& b, const std::string& device);

// Records that the bundle now lives on `target` under `root` (runtime_pushes).
Result<void> record_push(Inventory& inv, const Bundle& b, const PushResult& r);

// Where the bundle was pushed: [{target, root, pushed_at}].
Result<nlohmann::json> bundle_pushes(Inventory& inv, const std::string& id);

// Minimum Linux driver for a CUDA toolkit version ("12.2.140"): {full, compat}; empty if unknown.
std::pair<std::string, std::string> min_driver_for_cuda(std::string_view cuda_version);
// Numeric dotted-version compare (-1, 0, 1).
int compare_versions(std::string_view a, std::string_view b);

// Detected versions of the trees (cuda, cudnn, tensorrt, nccl, python), pure file reads.
nlohmann::json detect_versions(const std::vector<ComponentSpec>& components);

// Rewrites occurrences of each `from` with `to` (pure). Text (no NUL byte): plain substitution.
// Binary: each NUL-terminated string holding `from` is rewritten and NUL-padded to its original
// length (conda-pack's rule); returns false in `fits` when a `to` is longer than its `from`.
struct Rewrite {
  std::string from, to;
};
struct RelocateOutcome {
  bool changed = false;
  bool binary = false;
  bool fits = true;
};
RelocateOutcome relocate(std::string& data, const std::vector<Rewrite>& rewrites);

// Content-defined chunk boundaries for a buffer (end offsets); small inputs are one chunk.
std::vector<std::size_t> chunk_boundaries(std::string_view data);

// The streaming forms of relocate and chunk_boundaries, so pack holds a bounded amount of a large
// file in memory: fed the same bytes in blocks of any size, they give exactly the whole-buffer
// result (the same output bytes, the same chunks).
class Relocator {
 public:
  // `binary`: whether the whole input holds a NUL byte (decides the rule, as in relocate).
  Relocator(const std::vector<Rewrite>& rewrites, bool binary);
  // Appends to `out` the relocated bytes that no later input can change.
  void feed(std::string_view in, std::string& out);
  // End of input: appends the rest.
  void finish(std::string& out);
  bool changed() const { return changed_; }
  bool fits() const { return fits_; }

 private:
  struct Stage {
    const Rewrite* rw;
    std::string pending;
    std::size_t scan = 0;
  };
  void run(std::size_t stage, bool final, std::string& out);
  std::vector<Stage> stages_;  // text: one per rewrite, longest `from` first
  std::vector<const Rewrite*> order_;
  bool binary_;
  std::string carry_;  // binary: the bytes after the last NUL seen
  bool changed_ = false, fits_ = true;
};

class Chunker {
 public:
  // Calls emit(chunk) for each chunk as soon as its end is known (at most kMax bytes buffered
  // plus the block being fed).
  template <class Emit>
  void feed(std::string_view in, Emit&& emit) {
    append(in);
    while (buf_.size() - off_ >= max_chunk()) emit_one(emit, cut());
  }
  template <class Emit>
  void finish(Emit&& emit) {
    if (!emitted_ && buf_.size() - off_ <= whole_file_max())
      emit_one(emit, buf_.size() - off_);  // small inputs are one chunk (even an empty one)
    else
      while (buf_.size() > off_) emit_one(emit, cut());
    reset();
  }
  void reset() {
    buf_.clear();
    off_ = 0;
    emitted_ = false;
  }
  std::size_t buffered_capacity() const { return buf_.capacity(); }

 private:
  static std::size_t max_chunk();
  static std::size_t whole_file_max();
  void append(std::string_view in);
  std::size_t cut() const;  // the length of the next chunk at off_
  template <class Emit>
  void emit_one(Emit& emit, std::size_t n) {
    emit(std::string_view(buf_).substr(off_, n));
    off_ += n;
    emitted_ = true;
  }
  std::string buf_;
  std::size_t off_ = 0;
  bool emitted_ = false;
};

namespace detail {
// The remote materialiser's reply for `device` in `mode` (have / apply / verify): the last line
// of its stdout as a JSON object with the fields and types that mode returns. A device's reply is
// input: anything else (not JSON, a missing field, a number where a string belongs) is a failure
// naming the device, never an exception; an "error" reply is a failure with its message.
Result<nlohmann::json> materialiser_reply(const std::string& device, std::string_view mode,
                                          const std::string& out, const std::string& err,
                                          int exit_code);
}  // namespace detail

}  // namespace gedge::runtime
