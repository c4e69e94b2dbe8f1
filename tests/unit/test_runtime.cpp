// Unit tests for libgedge/src/runtime: relocation, chunking, versions, driver check, mounts,
// and pack/verify/gc/push against a temporary GEDGE_HOME.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <functional>
#include <random>
#include <set>

#include "../../libgedge/src/inventory/raw.hpp"
#include "../../libgedge/src/runtime/manifest.hpp"
#include "gedge/runtime.hpp"
#include "gedge/runtime_views.hpp"
#include "gedge/stores.hpp"
#include "test_helpers.hpp"

namespace fs = std::filesystem;
using namespace gedge;
using namespace gedge::runtime;

namespace {

void write(const fs::path& p, const std::string& data, unsigned mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
  ::chmod(p.c_str(), mode);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g() & 0xff);
  return s;
}

struct Home {
  test::TempDir dir;
  Paths paths;
  Inventory inv;
  Home() : inv(open()) {}
  Inventory open() {
    paths.home = dir.path / "home";
    paths.db = paths.home / "gedge.db";
    paths.runtimes = paths.home / "runtimes";
    paths.log_dir = paths.home / "log";
    REQUIRE(ensure_home(paths));
    auto i = Inventory::open(paths.db, true);
    REQUIRE(i);
    return std::move(*i);
  }
};

// b recorded under another manifest (its id is the manifest's hash, as pack would record it).
Bundle with_manifest(Bundle b, nlohmann::json m) {
  b.manifest = std::move(m);
  b.id = sha256_hex(b.manifest.dump());
  return b;
}

nlohmann::json& manifest_entry(nlohmann::json& m, const std::string& path) {
  for (auto& e : m["entries"])
    if (e["path"] == path) return e;
  throw std::runtime_error("no entry " + path);
}

}  // namespace

TEST_CASE("relocate rewrites text and NUL-pads binaries") {
  std::vector<Rewrite> rw{{"/build/prefix/env", "/opt/rt/env"}};
  SUBCASE("text: every occurrence, path boundary respected") {
    std::string s =
        "#!/build/prefix/env/bin/python\nhome=/build/prefix/env\nother=/build/prefix/env2\n";
    auto r = relocate(s, rw);
    CHECK(r.changed);
    CHECK_FALSE(r.binary);
    CHECK(s == "#!/opt/rt/env/bin/python\nhome=/opt/rt/env\nother=/build/prefix/env2\n");
  }
  SUBCASE("binary: same length, padded inside the C string") {
    std::string s = std::string(
                        "\x7f"
                        "ELF\0",
                        5) +
                    "/build/prefix/env/lib:/build/prefix/env/lib64" + std::string(1, '\0') + "tail";
    std::size_t len = s.size();
    auto r = relocate(s, rw);
    CHECK(r.changed);
    CHECK(r.binary);
    CHECK(r.fits);
    CHECK(s.size() == len);
    std::string expect_str = "/opt/rt/env/lib:/opt/rt/env/lib64";
    CHECK(s.substr(5, expect_str.size()) == expect_str);
    CHECK(s.find("tail") == len - 4);
    CHECK(s[5 + expect_str.size()] == '\0');
  }
  SUBCASE("binary: a longer prefix does not fit and leaves the data alone") {
    std::vector<Rewrite> longer{{"/build/prefix/env", "/a/much/longer/prefix/than/before/env"}};
    std::string s = std::string("\0", 1) + "/build/prefix/env/lib" + std::string("\0", 1);
    std::string orig = s;
    auto r = relocate(s, longer);
    CHECK_FALSE(r.fits);
    CHECK(s == orig);
  }
  SUBCASE("no occurrence: untouched") {
    std::string s = "nothing here";
    CHECK_FALSE(relocate(s, rw).changed);
  }
}

TEST_CASE("content-defined chunks realign after an insertion") {
  std::string a = random_bytes(12u << 20, 1);
  std::string b = a.substr(0, 5u << 20) + "INSERTED" + a.substr(5u << 20);
  auto ca = chunk_boundaries(a), cb = chunk_boundaries(b);
  CHECK(ca.back() == a.size());
  CHECK(cb.back() == b.size());
  CHECK(ca.size() > 3);
  std::set<std::string> ha, hb;
  std::size_t s = 0;
  for (auto e : ca) ha.insert(sha256_hex(std::string_view(a).substr(s, e - s))), s = e;
  s = 0;
  for (auto e : cb) hb.insert(sha256_hex(std::string_view(b).substr(s, e - s))), s = e;
  std::size_t shared = 0;
  for (const auto& h : hb) shared += ha.count(h);
  CHECK(shared + 2 >= ha.size());  // at most the chunk(s) around the edit differ
  CHECK(chunk_boundaries("small") == std::vector<std::size_t>{5});
}

// The chunking rule written as plainly as possible (one gear hash over each byte past the
// minimum, cut where its low 20 bits are zero): chunk_boundaries must give exactly these cuts, so
// a faster scan never changes a chunk, a hash or what the store already holds.
std::array<uint64_t, 256> reference_gear() {
  std::array<uint64_t, 256> gear{};
  uint64_t x = 0x67656467652d7274ull;
  for (auto& v : gear) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return gear;
}

std::vector<std::size_t> reference_boundaries(std::string_view data) {
  static const auto gear = reference_gear();
  const std::size_t min = 256u << 10, max = 4u << 20;
  const uint64_t mask = (1ull << 20) - 1;
  std::vector<std::size_t> ends;
  if (data.size() <= (1u << 20)) return {data.size()};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t start = 0;
  while (start < data.size()) {
    std::size_t left = data.size() - start, cut = left;
    if (left > min) {
      std::size_t limit = std::min(left, max);
      cut = limit;
      uint64_t h = 0;
      for (std::size_t j = start + min - 64; j < start + min; ++j) h = (h << 1) + gear[p[j]];
      for (std::size_t i = min; i < limit; ++i) {
        h = (h << 1) + gear[p[start + i]];
        if ((h & mask) == 0) {
          cut = i + 1;
          break;
        }
      }
    }
    start += cut;
    ends.push_back(start);
  }
  return ends;
}

TEST_CASE("chunk boundaries are exactly the plain gear-hash cuts") {
  SUBCASE("random data of many lengths") {
    std::string data = random_bytes(21u << 20, 11);
    for (std::size_t size : {std::size_t{1} << 20, (std::size_t{1} << 20) + 1,
                             (std::size_t{256} << 10) * 5 + 4096 * 3 + 17, std::size_t{9} << 20,
                             data.size() - 1, data.size()}) {
      std::string_view in = std::string_view(data).substr(0, size);
      CAPTURE(size);
      CHECK(chunk_boundaries(in) == reference_boundaries(in));
    }
  }
  SUBCASE("a pattern that cuts often, at every offset within the scan's lanes") {
    // Repeats of a random block holding a cut position: many candidate cuts, in every lane and
    // at once in several lanes, so the earliest one must win.
    const auto gear = reference_gear();
    auto cuts_in = [&](const std::string& b) {  // whether some offset of the repeated b cuts
      for (std::size_t i = 0; i < b.size(); ++i) {
        uint64_t h = 0;
        for (std::size_t k = 20; k > 0; --k)
          h = (h << 1) + gear[static_cast<unsigned char>(b[(i + b.size() - k + 1) % b.size()])];
        if ((h & ((1ull << 20) - 1)) == 0) return true;
      }
      return false;
    };
    std::string block;
    for (unsigned seed = 1; block.empty() || !cuts_in(block); ++seed)
      block = random_bytes(1531, seed);
    std::string data;
    while (data.size() < (12u << 20)) data += block;
    for (std::size_t skip : {std::size_t{0}, std::size_t{1}, std::size_t{700}, std::size_t{1500}}) {
      std::string_view in = std::string_view(data).substr(skip);
      auto ends = chunk_boundaries(in);
      CAPTURE(skip);
      CHECK(ends == reference_boundaries(in));
      CHECK(ends.size() > 12);  // cut near the minimum each time, not at the maximum
    }
  }
}

TEST_CASE("streamed relocation gives relocate()'s bytes for any block size") {
  std::vector<Rewrite> rw{
      {"/build/prefix/env", "/opt/rt/env"}, {"/b/p", "/x/yy"}, {"/build/prefix/env-src", "/o"}};
  std::mt19937_64 g(7);
  // Inputs made of path fragments, separators and NULs, so matches, near-misses, boundaries and
  // C strings fall across block edges.
  const std::vector<std::string> parts{"/build/prefix/env",
                                       "/build/prefix/env2",
                                       "/build/prefix/env-src",
                                       "/b/p",
                                       "/b/pq",
                                       "/lib",
                                       ":",
                                       "\n",
                                       " ",
                                       "x",
                                       "/build/prefix/"};
  for (int round = 0; round < 400; ++round) {
    bool binary = round % 2 == 1;
    std::string in;
    int n = static_cast<int>(g() % 60);
    for (int i = 0; i < n; ++i) {
      in += parts[g() % parts.size()];
      if (binary && g() % 4 == 0) in += '\0';
    }
    if (binary) in.insert(in.begin() + static_cast<std::ptrdiff_t>(g() % (in.size() + 1)), '\0');
    std::string whole = in;
    auto r = relocate(whole, rw);
    for (std::size_t block : {std::size_t{1}, std::size_t{3}, std::size_t{16}, std::size_t{1000}}) {
      Relocator st(rw, r.binary);
      std::string out;
      for (std::size_t i = 0; i < in.size(); i += block)
        st.feed(std::string_view(in).substr(i, block), out);
      st.finish(out);
      CAPTURE(round);
      CAPTURE(block);
      CHECK(st.fits() == r.fits);
      if (r.fits) {
        CHECK(out == whole);
        CHECK(st.changed() == r.changed);
      }
    }
  }
  SUBCASE("a longer prefix in a binary does not fit when streamed either") {
    std::vector<Rewrite> longer{{"/build/prefix/env", "/a/much/longer/prefix/than/before/env"}};
    std::string s = std::string("\0", 1) + "/build/prefix/env/lib" + std::string("\0", 1);
    Relocator st(longer, true);
    std::string out;
    st.feed(s, out);
    st.finish(out);
    CHECK_FALSE(st.fits());
  }
}

TEST_CASE("streamed chunking gives chunk_boundaries' chunks for any block size") {
  std::string data = random_bytes(13u << 20, 3);
  for (std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{1} << 20,
                           (std::size_t{1} << 20) + 1, std::size_t{5} << 20, data.size()}) {
    std::string_view in = std::string_view(data).substr(0, size);
    auto ends = chunk_boundaries(in);
    for (std::size_t block :
         {std::size_t{4096}, std::size_t{1} << 20, std::size_t{3} << 20, std::size_t{8} << 20}) {
      Chunker c;
      std::vector<std::size_t> got;
      std::size_t at = 0, most = 0;
      auto emit = [&](std::string_view piece) {
        CHECK(piece == in.substr(at, piece.size()));
        at += piece.size();
        got.push_back(at);
      };
      for (std::size_t i = 0; i < in.size(); i += block) {
        c.feed(in.substr(i, block), emit);
        most = std::max(most, c.buffered_capacity());
      }
      c.finish(emit);
      CAPTURE(size);
      CAPTURE(block);
      CHECK(got == ends);
      CHECK(most <= 2 * ((std::size_t{4} << 20) + block));  // bounded: never the whole input
    }
  }
}

TEST_CASE("CUDA driver table and verdicts") {
  CHECK(compare_versions("535.54.03", "525.60.13") == 1);
  CHECK(compare_versions("12.2", "12.2.0") == 0);
  CHECK(min_driver_for_cuda("12.2.140").first == "535.54.03");
  CHECK(min_driver_for_cuda("12.2.140").second == "525.60.13");
  CHECK(min_driver_for_cuda("11.8.0").first == "520.61.05");
  CHECK(min_driver_for_cuda("12.7").first == "560.28.03");
  nlohmann::json m{
      {"versions", {{"cuda", "12.2.140"}}},
      {"requires", {{"cuda_driver_min", "535.54.03"}, {"cuda_driver_min_compat", "525.60.13"}}}};
  auto facts = [](std::string d) {
    return nlohmann::json{{"gpus", {{{"name", "T4"}, {"driver", d}}}}};
  };
  CHECK(check_driver(m, facts("550.54.14"))["verdict"] == "ok");
  CHECK(check_driver(m, facts("530.30.02"))["verdict"] == "compat");
  CHECK(check_driver(m, facts("470.42.01"))["verdict"] == "too_old");
  CHECK(check_driver(m, nlohmann::json::object())["verdict"] == "unknown");
  CHECK(check_driver(nlohmann::json::object(), facts("470"))["verdict"] == "no_cuda");
}

TEST_CASE("versions come from the files NVIDIA and Python ship") {
  test::TempDir t;
  write(
      t.path / "cuda/version.json",
      R"J({"cuda":{"name":"CUDA SDK","version":"12.2.2"},"cuda_cudart":{"name":"CUDA Runtime (cudart)","version":"12.2.140"}})J");
  write(t.path / "cudnn/include/cudnn_version.h",
        "#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 9\n#define CUDNN_PATCHLEVEL 7\n");
  write(t.path / "trt/include/NvInferVersion.h",
        "#define NV_TENSORRT_MAJOR 8\n#define NV_TENSORRT_MINOR 6\n#define NV_TENSORRT_PATCH "
        "1\n#define NV_TENSORRT_BUILD 6\n");
  write(t.path / "env/pyvenv.cfg", "home = /usr/bin\nversion = 3.11.2\n");
  write(t.path / "old/version.txt", "CUDA Version 11.2.152\n");
  auto v = detect_versions({{"env", t.path / "env"},
                            {"cuda", t.path / "cuda"},
                            {"cudnn", t.path / "cudnn"},
                            {"tensorrt", t.path / "trt"}});
  CHECK(v["cuda"] == "12.2.2");
  CHECK(v["cudnn"] == "8.9.7");
  CHECK(v["tensorrt"] == "8.6.1.6");
  CHECK(v["python"] == "3.11.2");
  CHECK(detect_versions({{"cuda", t.path / "old"}})["cuda"] == "11.2.152");
}

TEST_CASE("pack, verify, gc and push to a directory") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "bin/tool", "#!" + env.string() + "/bin/python\nprint('hi')\n", 0755);
  write(env / "etc/conf", "prefix=" + env.string() + "\n");
  write(env / "lib/big.bin", random_bytes(3u << 20, 7));
  write(env / "share/same1", "identical\n");
  write(env / "share/same2", "identical\n");
  fs::create_directories(env / "empty");
  fs::create_symlink("tool", env / "bin/tool-link");
  fs::create_symlink("/etc/hostname", env / "bin/outside");
  fs::create_hard_link(env / "etc/conf", env / "etc/conf-hard");

  PackRequest req;
  req.name = "t1";
  req.components = {{"env", env}};
  req.jobs = 2;
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->created);
  CHECK(r->files == 5);
  CHECK(r->hardlinks == 1);
  CHECK(r->symlinks == 2);
  CHECK(r->outside_links.size() == 1);
  CHECK(r->relocated.size() == 2);
  CHECK(r->bytes_stored > 0);
  CHECK(r->env["PATH"][0] == "/opt/gedge/rt/t1/env/bin");

  SUBCASE("same input, same id, nothing new stored") {
    auto again = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE(again);
    CHECK(again->id == r->id);
    CHECK_FALSE(again->created);
    CHECK(again->bytes_stored == 0);
  }
  auto b = find_bundle(h.inv, "t1");
  REQUIRE(b);
  CHECK(b->id == r->id);

  SUBCASE("verify names a corrupted chunk") {
    auto ok = verify(h.paths, *b, null_reporter());
    REQUIRE(ok);
    CHECK(ok->corrupted.empty());
    std::string victim = b->manifest["entries"][0]["path"];
    for (const auto& e : b->manifest["entries"])
      if (e["path"] == "env/etc/conf") victim = e["chunks"][0]["sha256"];
    fs::path cp = h.paths.runtimes / "chunks" / victim.substr(0, 2) / victim;
    write(cp, "garbage");
    auto bad = verify(h.paths, *b, null_reporter());
    REQUIRE(bad);
    REQUIRE(bad->corrupted.size() == 1);
    CHECK(bad->corrupted[0] == victim);
    CHECK(std::find(bad->bad_files.begin(), bad->bad_files.end(), "env/etc/conf") !=
          bad->bad_files.end());
  }

  SUBCASE("gc keeps referenced chunks and removes orphans") {
    write(h.paths.runtimes / "chunks/ff/ff00orphan", "x");
    auto g = gc(h.paths, h.inv, false, null_reporter());
    REQUIRE(g);
    CHECK(g->removed == 1);
    CHECK(g->kept == r->chunks);
    CHECK_FALSE(fs::exists(h.paths.runtimes / "chunks/ff/ff00orphan"));
    auto ok = verify(h.paths, *b, null_reporter());
    REQUIRE(ok);
    CHECK(ok->corrupted.empty());
    CHECK(ok->missing.empty());
  }

  SUBCASE("push --to materialises, skips present chunks, repairs") {
    test::TempDir target;
    auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    CHECK(p->state == "created");
    CHECK(p->chunks_sent == r->chunks);
    fs::path out = target.path / r->id / "env";
    CHECK(slurp(out / "bin/tool") == "#!/opt/gedge/rt/t1/env/bin/python\nprint('hi')\n");
    struct stat st {};
    REQUIRE(::stat((out / "bin/tool").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0555);  // files are read-only (hardlinks of shared objects)
    CHECK(fs::is_directory(out / "empty"));
    CHECK(fs::read_symlink(out / "bin/outside") == "/etc/hostname");
    struct stat a {
    }, c{};
    ::stat((out / "share/same1").c_str(), &a);
    ::stat((out / "share/same2").c_str(), &c);
    CHECK(a.st_ino == c.st_ino);  // identical files are hardlinked
    auto again = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE(again);
    CHECK(again->state == "verified");
    CHECK(again->chunks_sent == 0);
    CHECK(again->bytes_sent == 0);
    // Corrupt a file on the target (files are read-only hardlinks of objects: make it writable
    // first, which also changes the shared object): verify_dir finds it, the next push repairs it.
    ::chmod((out / "etc/conf").c_str(), 0644);
    write(out / "etc/conf", "tampered\n");
    auto v = verify_dir(*b, target.path, null_reporter());
    REQUIRE(v);
    CHECK(std::find(v->bad_files.begin(), v->bad_files.end(), "env/etc/conf") !=
          v->bad_files.end());
    auto fix = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE(fix);
    CHECK(fix->state == "repaired");
    CHECK(slurp(out / "etc/conf") == "prefix=/opt/gedge/rt/t1/env\n");
    auto clean = verify_dir(*b, target.path, null_reporter());
    REQUIRE(clean);
    CHECK(clean->bad_files.empty());
  }

  SUBCASE("push --to --dry-run only looks") {
    test::TempDir target;
    fs::path root = target.path / "export";
    auto d = push_to_dir(h.paths, *b, root, null_reporter(), /*dry_run=*/true);
    REQUIRE_MESSAGE(d, (d ? "" : d.error().message));
    CHECK(d->dry_run);
    CHECK(d->state == "would_create");
    CHECK(d->chunks_sent == r->chunks);
    CHECK(d->chunks_to_send.size() == r->chunks);
    CHECK_FALSE(fs::exists(root));
    auto p = push_to_dir(h.paths, *b, root, null_reporter());
    REQUIRE(p);
    CHECK(p->bytes_sent == d->bytes_sent);
    auto d2 = push_to_dir(h.paths, *b, root, null_reporter(), true);
    REQUIRE(d2);
    CHECK(d2->state == "would_verify");
    CHECK(d2->chunks_sent == 0);
    CHECK(d2->to_json()["chunks_to_send"].empty());
  }

  SUBCASE("mounts use absolute paths") {
    MountRequest m;
    m.format = MountFormat::podman;
    auto text = render_mounts(*b, m);
    REQUIRE(text);
    CHECK(text->find("-v /var/lib/gedge/runtimes/" + r->id + ":/opt/gedge/rt/t1:ro") == 0);
    CHECK(text->find("PATH=/opt/gedge/rt/t1/env/bin:") != std::string::npos);
    m.format = MountFormat::k8s;
    m.pvc = "runtimes";
    m.sub_path = "rt";
    auto k = render_mounts(*b, m);
    REQUIRE(k);
    CHECK(k->find("subPath: rt/" + r->id) != std::string::npos);
    CHECK(k->find("mountPath: /opt/gedge/rt/t1") != std::string::npos);
    m.root = "relative/dir";
    CHECK_FALSE(render_mounts(*b, m));
  }
}

TEST_CASE("pack --dry-run reports and writes nothing") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "a", "alpha\n");
  write(env / "b", random_bytes(2u << 20, 3));
  PackRequest req;
  req.name = "dry";
  req.components = {{"env", env}};
  req.dry_run = true;
  auto d = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE_MESSAGE(d, (d ? "" : d.error().message));
  CHECK(d->dry_run);
  CHECK(d->files == 2);
  CHECK(d->chunks_new == d->chunks);
  CHECK(d->bytes_new == d->bytes_unique);
  CHECK(d->bytes_stored == 0);
  CHECK_FALSE(fs::exists(h.paths.runtimes / "chunks"));
  CHECK_FALSE(fs::exists(h.paths.runtimes / "statcache"));
  CHECK_FALSE(find_bundle(h.inv, "dry"));
  req.dry_run = false;
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE(r);
  CHECK(r->id == d->id);
  CHECK(r->chunks_new == d->chunks_new);
  CHECK(r->bytes_new == d->bytes_new);
}

TEST_CASE("pack refuses what it cannot bundle faithfully") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "ok", "fine\n");
  PackRequest req;
  req.name = "bad";
  req.components = {{"env", env}};
  SUBCASE("fifo") {
    REQUIRE(::mkfifo((env / "pipe").c_str(), 0600) == 0);
    auto r = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find("pipe (fifo)") != std::string::npos);
  }
  SUBCASE("non-UTF-8 name") {
    write(env / std::string("bad\xff name"), "x");
    auto r = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find("bad\\xff name") != std::string::npos);
  }
  SUBCASE("binary with a prefix that does not fit") {
    write(env / "lib/libx.so", std::string("\0", 1) + env.string() + "/lib" + std::string("\0", 1));
    req.prefix = "/opt/" + std::string(200, 'p');
    auto r = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::usage);
    CHECK(r.error().message.find("env/lib/libx.so") != std::string::npos);
    CHECK(r.error().hint.find("shorter --prefix") != std::string::npos);
  }
  SUBCASE("symlink loop is recorded, not followed") {
    fs::create_symlink("b", env / "a");
    fs::create_symlink("a", env / "b");
    auto r = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE(r);
    CHECK(r->symlinks == 2);
  }
  SUBCASE("a newline in a name is kept") {
    write(env / "line\nbreak", "x");
    auto r = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE(r);
    CHECK(r->files == 2);
  }
}

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

unsigned manifest_mode(const Bundle& b, const std::string& path) {
  for (const auto& e : b.manifest["entries"])
    if (e["path"] == path) return e["mode"].get<unsigned>();
  FAIL("no entry " << path);
  return 0;
}

}  // namespace

TEST_CASE(
    "pack drops setuid, setgid, sticky and group/other write unless asked; objects are read-only") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "bin/suid", "#!/bin/sh\nid\n", 04755);
  write(env / "etc/shared", "everyone writes\n", 0666);
  write(env / "etc/private", "mine\n", 0600);
  fs::create_directories(env / "spool");
  ::chmod((env / "spool").c_str(), 01777);
  fs::create_directories(env / "group");
  ::chmod((env / "group").c_str(), 02775);
  PackRequest req;
  req.name = "modes";
  req.components = {{"env", env}};
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->modes_stripped.size() == 4);
  auto b = find_bundle(h.inv, "modes");
  REQUIRE(b);
  CHECK_FALSE(b->manifest.contains("keep_special_modes"));
  CHECK(manifest_mode(*b, "env/bin/suid") == 0755);
  CHECK(manifest_mode(*b, "env/etc/shared") == 0644);
  CHECK(manifest_mode(*b, "env/etc/private") == 0600);
  CHECK(manifest_mode(*b, "env/spool") == 0755);
  CHECK(manifest_mode(*b, "env/group") == 0755);

  test::TempDir target;
  auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  fs::path out = target.path / r->id / "env";
  CHECK(mode_of(out / "bin/suid") == 0555);
  CHECK(mode_of(out / "etc/shared") == 0444);
  CHECK(mode_of(out / "etc/private") == 0400);
  CHECK(mode_of(out / "spool") == 0755);
  CHECK(mode_of(out / "group") == 0755);
  for (const auto& f : fs::recursive_directory_iterator(target.path / ".gedge/objects"))
    if (f.is_regular_file()) CHECK_MESSAGE((mode_of(f.path()) & 0222) == 0, f.path().string());

  SUBCASE("an old manifest that recorded special bits is still materialised without them") {
    nlohmann::json m = b->manifest;
    for (auto& e : m["entries"])
      if (e["path"] == "env/bin/suid") e["mode"] = 04777;
    Bundle old = with_manifest(*b, m);
    test::TempDir t2;
    auto p2 = push_to_dir(h.paths, old, t2.path, null_reporter());
    REQUIRE_MESSAGE(p2, (p2 ? "" : p2.error().message));
    CHECK(mode_of(t2.path / old.id / "env/bin/suid") == 0555);
  }

  SUBCASE("--keep-special-modes keeps them, recorded in the manifest") {
    req.name = "modes-kept";
    req.keep_special_modes = true;
    auto k = pack(h.paths, h.inv, req, null_reporter());
    REQUIRE(k);
    CHECK(k->modes_stripped.empty());
    CHECK(k->id != r->id);
    auto kb = find_bundle(h.inv, "modes-kept");
    REQUIRE(kb);
    CHECK(kb->manifest["keep_special_modes"] == true);
    CHECK(manifest_mode(*kb, "env/bin/suid") == 04755);
    test::TempDir t3;
    auto p3 = push_to_dir(h.paths, *kb, t3.path, null_reporter());
    REQUIRE_MESSAGE(p3, (p3 ? "" : p3.error().message));
    CHECK(mode_of(t3.path / k->id / "env/bin/suid") == 04555);
    CHECK(mode_of(t3.path / k->id / "env/spool") == 01777);
  }
}

TEST_CASE("a manifest path that could leave the target is refused on load") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "etc/conf", "x\n");
  PackRequest req;
  req.name = "paths";
  req.components = {{"env", env}};
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE(r);
  auto b = find_bundle(h.inv, "paths");
  REQUIRE(b);
  auto tamper = [&](const std::function<void(nlohmann::json&)>& f) {
    nlohmann::json m = b->manifest;
    f(m);
    REQUIRE(InventoryRaw::exec(h.inv, "UPDATE runtimes SET manifest = ? WHERE id = ?",
                               {m.dump(), r->id}));
    return find_bundle(h.inv, r->id);
  };
  auto& entry = manifest_entry;
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> f;
    const char* says;
  };
  std::vector<Case> cases = {
      {"dot-dot", [&](auto& m) { entry(m, "env/etc/conf")["path"] = "env/etc/../../../escape"; },
       "not a plain relative path"},
      {"absolute", [&](auto& m) { entry(m, "env/etc/conf")["path"] = "/etc/cron.d/x"; },
       "not a plain relative path"},
      {"empty component", [&](auto& m) { entry(m, "env/etc/conf")["path"] = "env//conf"; },
       "not a plain relative path"},
      {"parent not an earlier dir",
       [&](auto& m) { entry(m, "env/etc/conf")["path"] = "env/nowhere/conf"; }, "parent"},
      {"through a symlink entry",
       [&](auto& m) {
         auto& d = entry(m, "env/etc");
         d["type"] = "symlink";
         d["target"] = "/etc";
       },
       "parent"},
      {"hardlink to nothing",
       [&](auto& m) {
         auto& e = entry(m, "env/etc/conf");
         e["type"] = "hardlink";
         e["link"] = "/etc/shadow";
       },
       "earlier file"},
      {"mode out of range", [&](auto& m) { entry(m, "env/etc/conf")["mode"] = 0100644; }, "mode"},
      {"bad chunk name",
       [&](auto& m) { entry(m, "env/etc/conf")["chunks"][0]["sha256"] = "../../x"; }, "chunk"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    auto bad = tamper(c.f);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("manifest of bundle") == 0);
    CHECK_MESSAGE(bad.error().message.find(c.says) != std::string::npos, bad.error().message);
  }
}

TEST_CASE("push --to never follows a link planted in the target") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "etc/conf", "conf\n");
  write(env / "bin/tool", "tool\n", 0755);
  PackRequest req;
  req.name = "planted";
  req.components = {{"env", env}};
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE(r);
  auto b = find_bundle(h.inv, "planted");
  REQUIRE(b);
  test::TempDir target, victim;
  auto victim_empty = [&] { return fs::is_empty(victim.path); };

  SUBCASE("an object fan-out dir that is a link: refused, nothing written through it") {
    std::string sha;
    for (const auto& e : b->manifest["entries"])
      if (e["path"] == "env/etc/conf") sha = e["sha256"];
    fs::create_directories(target.path / ".gedge/objects");
    fs::create_directory_symlink(victim.path, target.path / ".gedge/objects" / sha.substr(0, 2));
    auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE_FALSE(p);
    CHECK_MESSAGE(
        p.error().message.find("refusing to follow the symbolic link") != std::string::npos,
        p.error().message);
    CHECK(victim_empty());
    CHECK_FALSE(fs::exists(target.path / r->id));
  }
  SUBCASE(
      "the bundle dir itself is a link: replaced by the real tree, the link's target untouched") {
    fs::create_directories(victim.path / "env/etc");
    fs::create_directory_symlink(victim.path, target.path / r->id);
    auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    CHECK(p->state == "created");
    CHECK_FALSE(fs::is_symlink(target.path / r->id));
    CHECK(slurp(target.path / r->id / "env/etc/conf") == "conf\n");
    CHECK(fs::is_empty(victim.path / "env/etc"));
  }
  SUBCASE(
      "a directory inside the tree replaced by a link: repaired in place, nothing written through "
      "it") {
    REQUIRE(push_to_dir(h.paths, *b, target.path, null_reporter()));
    fs::path etc = target.path / r->id / "env/etc";
    fs::remove_all(etc);
    fs::create_directory_symlink(victim.path, etc);
    auto v = verify_dir(*b, target.path, null_reporter());
    REQUIRE(v);
    CHECK(std::find(v->bad_files.begin(), v->bad_files.end(), "env/etc/conf") !=
          v->bad_files.end());
    auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
    CHECK(p->state == "repaired");
    CHECK_FALSE(fs::is_symlink(etc));
    CHECK(slurp(etc / "conf") == "conf\n");
    CHECK(victim_empty());
  }
}

TEST_CASE(
    "a device's materialiser reply with unexpected JSON types is a failure naming it, not an "
    "abort") {
  using detail::materialiser_reply;
  auto ok = [](std::string_view mode, const std::string& line) {
    auto r = materialiser_reply("cam-1", mode, "noise\n" + line + "\n", "", 0);
    return r.has_value();
  };
  CHECK(ok("have", R"({"missing": ["ab"], "zstd": true, "present": false})"));
  CHECK(ok("apply", R"({"state": "created", "files": 3, "repaired": []})"));
  CHECK(ok("verify", R"({"bad_files": ["env/x"]})"));
  struct Case {
    std::string_view mode;
    std::string line, says;
  };
  std::vector<Case> cases = {
      {"have", R"({"missing": "ab", "zstd": true, "present": false})",
       "'missing' is not a list of strings"},
      {"have", R"({"missing": [1, 2], "zstd": true, "present": false})",
       "'missing' is not a list of strings"},
      {"have", R"({"missing": [], "zstd": "yes", "present": false})", "'zstd' is not a boolean"},
      {"have", R"({"missing": []})", "'zstd' is not a boolean"},
      {"apply", R"({"state": 7, "files": 3, "repaired": []})",
       "'state' is not created, verified or repaired"},
      {"apply", R"({"state": "created", "files": "3", "repaired": []})", "'files' is not a count"},
      {"apply", R"({"state": "created", "files": -1, "repaired": []})", "'files' is not a count"},
      {"apply", R"({"state": "created", "files": 3, "repaired": [null]})",
       "'repaired' is not a list of strings"},
      {"apply", R"({"error": {"nested": true}})", "'error' is not a string"},
      {"verify", R"({"bad_files": {"a": 1}})", "'bad_files' is not a list of strings"},
      {"verify", R"([1, 2, 3])", "materialiser failed"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.line);
    auto r = materialiser_reply("cam-1", c.mode, c.line + "\n", "", 0);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::failure);
    CHECK(r.error().message.starts_with("cam-1: "));
    CHECK_MESSAGE(r.error().message.find(c.says) != std::string::npos, r.error().message);
  }
  auto e = materialiser_reply("cam-1", "apply", R"({"error": "No space left on device"})", "", 1);
  REQUIRE_FALSE(e);
  CHECK(e.error().message == "cam-1: No space left on device");
  CHECK(e.error().hint.find("free space") != std::string::npos);
}

TEST_CASE("pack writes the manifest's canonical text without a JSON tree of its entries") {
  // append_json_string writes what nlohmann's dump() writes, for every ASCII byte, UTF-8 and
  // the characters JSON escapes.
  std::string every;
  for (int c = 1; c < 128; ++c) every += static_cast<char>(c);
  for (std::string s :
       {std::string(), every, std::string("a\"b\\c"), std::string("\xc3\xbcn\xc3\xaf \xe2\x82\xac"),
        std::string("tab\there\nnl\x1f\x7f"), std::string("\"entries\":[]")}) {
    std::string out = "x";
    append_json_string(out, s);
    CHECK(out == "x" + nlohmann::json(s).dump());
  }
  // The entries spliced into the manifest give canonical_manifest's text, whatever the other
  // fields hold (a prefix that spells the slot it is spliced into included).
  nlohmann::json entries = nlohmann::json::array({{{"path", "env"}, {"mode", 493}, {"type", "dir"}},
                                                  {{"path", "env/a\"b"},
                                                   {"mode", 420},
                                                   {"type", "file"},
                                                   {"size", 1},
                                                   {"sha256", "ab"},
                                                   {"chunks", {{{"sha256", "ab"}, {"size", 1}}}}}});
  nlohmann::json m{{"format", 2},
                   {"name", "n"},
                   {"prefix", "/opt/\"entries\":[]"},
                   {"components", {{{"role", "env"}, {"path", "env"}}}}};
  nlohmann::json whole = m;
  whole["entries"] = entries;
  CHECK(canonical_manifest_with_entries(m, entries.dump()) == canonical_manifest(whole));

  // A pack of names JSON escapes: its stored text is canonical (parse and dump give it back) and
  // the bundle id is its SHA-256.
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  write(env / "q\"uote", "1\n");
  write(env / "back\\slash", "2\n");
  write(env / "tab\tname", "3\n");
  write(env / "\xc3\xbcnicode", "4\n");
  write(env / "lib/big.bin", random_bytes(5u << 20, 3));  // several chunks
  fs::create_hard_link(env / "q\"uote", env / "hard\"link");
  fs::create_symlink("/etc/host\"name", env / "out\\side");
  fs::create_symlink("q\"uote", env / "in\"side");
  PackRequest req;
  req.name = "canon";
  req.components = {{"env", env}};
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto row = RuntimeStore(h.inv).get(r->id);
  REQUIRE(row);
  REQUIRE(*row);
  const std::string& text = (*row)->manifest;
  CHECK(nlohmann::json::parse(text).dump() == text);
  CHECK(sha256_hex(text) == r->id);
  auto parsed = nlohmann::json::parse(text);
  CHECK(parsed["entries"].size() == 10);  // env, env/lib and 8 entries below them
  CHECK(r->outside_links.size() == 1);
  CHECK(r->hardlinks == 1);
}

TEST_CASE("manifest format 2 names a file of several chunks by its chunk list") {
  Home h;
  test::TempDir src;
  fs::path env = src.path / "env";
  std::string whole = random_bytes(6u << 20, 11);      // read whole: > 4 MiB, so 2+ chunks
  std::string streamed = random_bytes(10u << 20, 12);  // streamed (> 8 MiB)
  write(env / "lib/whole.bin", whole);
  write(env / "lib/streamed.bin", streamed);
  write(env / "etc/conf", "one chunk\n");
  PackRequest req;
  req.name = "ids";
  req.components = {{"env", env}};
  auto r = pack(h.paths, h.inv, req, null_reporter());
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  auto b = find_bundle(h.inv, "ids");
  REQUIRE(b);
  CHECK(b->manifest["format"] == 2);
  auto& entry = manifest_entry;
  nlohmann::json m = b->manifest;
  for (const auto& [path, content] :
       {std::pair{"env/lib/whole.bin", &whole}, std::pair{"env/lib/streamed.bin", &streamed}}) {
    CAPTURE(path);
    const auto& e = entry(m, path);
    REQUIRE(e["chunks"].size() > 1);
    std::string list = "gedge-chunks\n";
    std::size_t off = 0;
    for (const auto& c : e["chunks"]) {
      std::size_t n = c["size"].get<std::size_t>();
      CHECK(c["sha256"] == sha256_hex(std::string_view(*content).substr(off, n)));
      list += c["sha256"].get<std::string>() + "\n";
      off += n;
    }
    CHECK(off == content->size());
    CHECK(e["sha256"] == sha256_hex(list));
  }
  CHECK(entry(m, "env/etc/conf")["sha256"] == sha256_hex("one chunk\n"));

  test::TempDir target;
  auto p = push_to_dir(h.paths, *b, target.path, null_reporter());
  REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
  fs::path out = target.path / r->id / "env";
  CHECK(slurp(out / "lib/whole.bin") == whole);
  CHECK(slurp(out / "lib/streamed.bin") == streamed);
  auto clean = verify_dir(*b, target.path, null_reporter());
  REQUIRE(clean);
  CHECK(clean->bad_files.empty());

  SUBCASE("a changed byte in a file named by its chunks is found, and repaired") {
    ::chmod((out / "lib/whole.bin").c_str(), 0644);
    std::string changed = whole;
    changed[changed.size() - 1] ^= 1;
    write(out / "lib/whole.bin", changed);
    auto v = verify_dir(*b, target.path, null_reporter());
    REQUIRE(v);
    CHECK(v->bad_files == std::vector<std::string>{"env/lib/whole.bin"});
    auto fix = push_to_dir(h.paths, *b, target.path, null_reporter());
    REQUIRE_MESSAGE(fix, (fix ? "" : fix.error().message));
    CHECK(fix->state == "repaired");
    CHECK(slurp(out / "lib/whole.bin") == whole);
  }

  SUBCASE("an id that is not its chunk list's is refused on load") {
    entry(m, "env/lib/whole.bin")["sha256"] = sha256_hex(whole);
    REQUIRE(InventoryRaw::exec(h.inv, "UPDATE runtimes SET manifest = ? WHERE id = ?",
                               {m.dump(), r->id}));
    auto bad = find_bundle(h.inv, r->id);
    REQUIRE_FALSE(bad);
    CHECK_MESSAGE(bad.error().message.find("chunk list") != std::string::npos, bad.error().message);
  }

  SUBCASE("a format-1 manifest still names every file by its bytes") {
    m["format"] = 1;
    entry(m, "env/lib/whole.bin")["sha256"] = sha256_hex(whole);
    entry(m, "env/lib/streamed.bin")["sha256"] = sha256_hex(streamed);
    Bundle old = with_manifest(*b, m);
    test::TempDir t1;
    auto p1 = push_to_dir(h.paths, old, t1.path, null_reporter());
    REQUIRE_MESSAGE(p1, (p1 ? "" : p1.error().message));
    CHECK(slurp(t1.path / old.id / "env/lib/whole.bin") == whole);
    auto v1 = verify_dir(old, t1.path, null_reporter());
    REQUIRE(v1);
    CHECK(v1->bad_files.empty());
    // ... and a chunk-list id in a format-1 manifest does not match its bytes
    entry(m, "env/lib/whole.bin")["sha256"] = entry(b->manifest, "env/lib/whole.bin")["sha256"];
    old = with_manifest(*b, m);
    test::TempDir t2;
    auto p2 = push_to_dir(h.paths, old, t2.path, null_reporter());
    REQUIRE_FALSE(p2);
    CHECK_MESSAGE(p2.error().message.find("does not match its hash") != std::string::npos,
                  p2.error().message);
  }
}

TEST_CASE("runtime views: sizes, --component, footers, rm's rows, the driver check's failures") {
  CHECK(human_bytes(0) == "0 B");
  CHECK(human_bytes(1023) == "1023 B");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(3ull << 30) == "3.0 GiB");
  CHECK(human_bytes(5ull << 50) == "5120.0 TiB");

  auto c = pack_components({"./env", "/opt/cuda/"}, {"data=/srv/d", "x=a=b"});
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  REQUIRE(c->size() == 4);
  CHECK((*c)[0].role == "env");
  CHECK((*c)[1].role == "cuda");  // a trailing slash names the directory
  CHECK((*c)[1].dir == "/opt/cuda/");
  CHECK((*c)[2].role == "data");
  CHECK((*c)[2].dir == "/srv/d");
  CHECK((*c)[3].role == "x");
  CHECK((*c)[3].dir == "a=b");
  for (const char* bad : {"env", "=dir", "env="}) {
    auto e = pack_components({}, {bad});
    REQUIRE_FALSE(e);
    CHECK(e.error().code == ErrorCode::usage);
    CHECK(e.error().message == std::string("malformed --component '") + bad + "'");
  }

  PackResult p;
  p.id = "0123456789abcdef";
  p.files = 5;
  p.files_cached = 2;
  p.bytes_read = 4096;
  p.bytes_unique = 2048;
  p.bytes_stored = 1024;
  p.chunks = 4;
  p.chunks_new = 1;
  CHECK(pack_summary(p) ==
        "packed 0123456789ab: 5 files (2 unchanged since the last pack), read 4.0 KiB, stored "
        "1.0 KiB new (1 of 4 chunks new), dedupe ratio 2.00");
  p.dry_run = true;
  p.bytes_new = 10;
  p.outside_links = {"a", "b"};
  CHECK(pack_summary(p) ==
        "dry run, nothing written: 0123456789ab: 5 files (2 unchanged since the last pack), read "
        "4.0 KiB, would store 10 B new (1 of 4 chunks new), dedupe ratio 2.00; 2 symlink(s) point "
        "outside");

  Bundle b{"fedcba9876543210fedcba", "demo", "2026-01-01T00:00:00Z", nlohmann::json::object()};
  VerifyResult v;
  v.chunks = 7;
  CHECK(verify_summary(b, v) == "fedcba987654: all 7 chunks verified");
  CHECK_FALSE(verify_error(b, v, false));
  v.corrupted = {std::string(64, 'a')};
  v.missing = {std::string(64, 'b')};
  for (int i = 0; i < 12; ++i) v.bad_files.push_back("f" + std::to_string(i));
  CHECK(verify_summary(b, v) == "fedcba987654: 1 corrupted, 1 missing chunks; 12 bad files");
  auto local = verify_error(b, v, false);
  REQUIRE(local);
  CHECK(local->code == ErrorCode::failure);
  CHECK(local->message ==
        "bundle fedcba987654 does not verify: aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb (missing), f0, "
        "f1, f2, f3, f4, f5, f6, f7, f8, f9");  // at most 10 files
  CHECK(local->hint == "pack the source trees again to restore the chunks");
  CHECK(verify_error(b, v, true)->hint == "push the bundle again to repair the copy");

  GcResult g;
  g.removed = 3;
  g.bytes_freed = 2048;
  g.kept = 9;
  CHECK(gc_summary(g) == "removed 3 chunks (2.0 KiB), kept 9");
  g.dry_run = true;
  CHECK(gc_summary(g) == "would remove 3 chunks (2.0 KiB), kept 9");

  RemoveResult rm;
  CHECK(remove_summary(rm) == "nothing to remove");
  CHECK(remove_rows(rm).empty());
  rm.removed.push_back({{"id", "aaaaaaaaaaaaaaaaaa"}, {"name", "demo"}, {"created_at", "t2"}});
  rm.kept.push_back({{"id", "bbbbbbbbbbbbbbbbbb"}, {"name", "demo"}, {"created_at", "t1"}});
  rm.dry_run = true;
  CHECK(remove_summary(rm) == "would remove 1 bundle(s)");
  CHECK(remove_rows(rm) ==
        nlohmann::json::array(
            {{{"id", "aaaaaaaaaaaa"},
              {"name", "demo"},
              {"created", "t2"},
              {"action", "would remove"}},
             {{"id", "bbbbbbbbbbbb"}, {"name", "demo"}, {"created", "t1"}, {"action", "kept"}}}));
  rm.dry_run = false;
  CHECK(remove_summary(rm) == "removed 1 bundle(s); 'gedge runtime gc' frees their chunks");
  CHECK(remove_rows(rm)[0]["action"] == "removed");

  CHECK(mount_format("k8s") == MountFormat::k8s);
  CHECK(mount_format("podman") == MountFormat::podman);
  CHECK(mount_format("sh") == MountFormat::sh);
  CHECK_FALSE(mount_format("json"));
  CHECK_FALSE(mount_format(""));

  nlohmann::json ok{{"verdict", "ok"}, {"reason", "driver 550 >= 525"}};
  CHECK(check_summary(ok) == "ok: driver 550 >= 525");
  CHECK_FALSE(check_error(ok, b, "edge1"));
  CHECK_FALSE(check_error({{"verdict", "compat"}, {"reason", "r"}}, b, "edge1"));
  auto old = check_error({{"verdict", "too_old"}, {"reason", "driver 470"}}, b, "edge1");
  REQUIRE(old);
  // (sic: the verdict stands where a device name would read better; unchanged from the cli)
  CHECK(old->message == "edge1 cannot run demo on too_old: driver 470");
  auto unknown = check_error({{"verdict", "unknown"}, {"reason", "no driver"}}, b, "edge1");
  REQUIRE(unknown);
  CHECK(unknown->message == "cannot tell whether edge1 runs demo: no driver");
  CHECK(unknown->hint == "refresh the facts with gedge device check edge1");
}

TEST_CASE("runtime push reports: every device, partial when some fail, all failed") {
  Bundle b{"fedcba9876543210fedcba", "demo", "t", nlohmann::json::object()};
  RemotePushRequest req;
  req.root = "/rt";
  PushResult done;
  done.target = "edge1";
  done.root = "/rt";
  done.state = "created";
  done.bytes_sent = 2048;
  RemoteOutcome good{"edge1", done, std::nullopt};
  RemoteOutcome bad{"edge2", std::nullopt,
                    Error{ErrorCode::unreachable, "edge2: connection refused", "check it"}};
  auto partial = remote_push_report(b, req, {good, bad});
  REQUIRE(partial.json["targets"].size() == 2);
  CHECK(partial.json["targets"][0]["target"] == "edge1");
  CHECK(partial.json["targets"][1] == nlohmann::json{{"target", "edge2"},
                                                     {"root", "/rt"},
                                                     {"state", "failed"},
                                                     {"error", "edge2: connection refused"},
                                                     {"code", "unreachable"}});
  REQUIRE(partial.error);
  CHECK(partial.error->code == ErrorCode::partial);
  CHECK(partial.error->message == "push failed on 1 of 2 devices: edge2: connection refused");
  CHECK(partial.error->hint == "check it");
  CHECK(partial.summary == "demo fedcba987654 pushed to 1 of 2 devices, 2.0 KiB sent");
  auto all_failed = remote_push_report(b, req, {bad});
  REQUIRE(all_failed.error);
  CHECK(all_failed.error->code == ErrorCode::unreachable);
  req.dry_run = true;
  auto dry = remote_push_report(b, req, {good});
  CHECK_FALSE(dry.error);
  CHECK(dry.json["dry_run"] == true);
  CHECK(dry.summary ==
        "demo fedcba987654 dry run, nothing written: checked 1 of 1 devices, 2.0 KiB would be "
        "sent");
}

TEST_CASE("runtime push to a directory records it; mounts -o json") {
  Home h;
  test::TempDir src, target;
  write(src.path / "env/bin/tool", "#!/bin/sh\necho hi\n", 0755);
  PackRequest req;
  req.name = "t1";
  req.components = {{"env", src.path / "env"}};
  REQUIRE(pack(h.paths, h.inv, req, null_reporter()));
  auto b = find_bundle(h.inv, "t1");
  REQUIRE(b);
  PushTargets t;
  t.to = (target.path / "export").string();
  t.remote.dry_run = true;
  auto dry = push(h.paths, h.inv, *b, t, null_reporter());
  REQUIRE_MESSAGE(dry, (dry ? "" : dry.error().message));
  CHECK(dry->json["dry_run"] == true);
  CHECK(dry->json["targets"][0]["state"] == "would_create");
  CHECK(bundle_pushes(h.inv, b->id)->empty());  // a dry run records nothing
  t.remote.dry_run = false;
  auto done = push(h.paths, h.inv, *b, t, null_reporter());
  REQUIRE_MESSAGE(done, (done ? "" : done.error().message));
  CHECK_FALSE(done->error);
  CHECK(done->json["id"] == b->id);
  CHECK(done->json["targets"][0]["state"] == "created");
  CHECK(done->summary.starts_with("created " + b->id.substr(0, 12) + " on "));
  CHECK(bundle_pushes(h.inv, b->id)->size() == 1);
  // A cluster that does not exist: not_found before anything is pushed.
  PushTargets none;
  none.cluster = "ghost";
  auto missing = push(h.paths, h.inv, *b, none, null_reporter());
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::not_found);

  MountRequest m;
  m.root = "/srv/rt/";
  auto j = mounts_json(*b, m);
  REQUIRE_MESSAGE(j, (j ? "" : j.error().message));
  CHECK((*j)["host_path"] == "/srv/rt/" + b->id);
  CHECK((*j)["mount_path"] == "/opt/gedge/rt/t1");
  CHECK((*j)["read_only"] == true);
  CHECK((*j)["env"]["PATH"].get<std::string>().starts_with("/opt/gedge/rt/t1/env/bin:"));
  CHECK((*j)["podman"].get<std::string>().find("-v /srv/rt/" + b->id + ":/opt/gedge/rt/t1:ro") ==
        0);
  CHECK((*j)["podman"].get<std::string>().back() != '\n');
}
