// push --device/--cluster: over SSH, ask the target which chunks it lacks, stream only those (with
// the manifest) to a small python3 materialiser passed as argv (`python3 -c`, data on stdin; no
// shell string is built from input), which stores them under ROOT/.gedge/rawchunks, builds
// ROOT/<id> in a staging dir through hardlinked objects, verifies every hash and renames it into
// place; an existing copy is verified and repaired.
#include <fmt/format.h>

#include <sys/stat.h>
#include <zstd.h>

#include <mutex>
#include <unordered_map>

#include "chunk_store.hpp"
#include "gedge/runtime.hpp"
#include "gedge/ssh.hpp"
#include "manifest.hpp"

namespace gedge::runtime {

namespace {

// The remote step (python3 stdlib only). Kept in one place; see the header comment.
const char* const kMaterialiser = R"PY(
import hashlib, json, os, re, shutil, stat, subprocess, sys, tempfile
R = sys.argv[2]
M = os.path.join(R, '.gedge')
C, O, T, MF = (os.path.join(M, d) for d in ('rawchunks', 'rawobjects', 'tmp', 'manifests'))
def sha(b): return hashlib.sha256(b).hexdigest()
HEX = re.compile('[0-9a-f]{64}$')
def cp(h):
    if not HEX.match(h): raise Exception('not a chunk name: %r' % h[:80])
    return os.path.join(C, h[:2], h)
def rd(p):
    with open(p, 'rb') as f: return f.read()
def wa(p, data, mode):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    fd, t = tempfile.mkstemp(dir=os.path.dirname(p), prefix='.tmp.')
    try:
        with os.fdopen(fd, 'wb') as f: f.write(data)
        os.chmod(t, mode)
        os.rename(t, p)
    except BaseException:
        try: os.unlink(t)
        except OSError: pass
        raise
def obj(e):
    p = os.path.join(O, e['sha256'][:2], '%s.%o' % (e['sha256'], e['mode']))
    try:
        if stat.S_IMODE(os.lstat(p).st_mode) == e['mode'] and sha(rd(p)) == e['sha256']: return p
    except OSError: pass
    parts = []
    for c in e['chunks']:
        try: d = rd(cp(c['sha256']))
        except OSError: raise Exception('chunk %s is missing on the target; push again' % c['sha256'])
        if sha(d) != c['sha256']:
            os.unlink(cp(c['sha256']))
            raise Exception('chunk %s was corrupted on the target (removed); push again' % c['sha256'])
        parts.append(d)
    b = b''.join(parts)
    if sha(b) != e['sha256']: raise Exception('file %s does not match its hash' % e['path'])
    wa(p, b, e['mode'])
    return p
def place(o, p, replace):
    t = os.path.join(os.path.dirname(p), '.gedge-repair.' + os.path.basename(p)) if replace else p
    try: os.unlink(t)
    except OSError: pass
    try: os.link(o, t)
    except OSError: shutil.copy2(o, t)
    if replace: os.rename(t, p)
def check(ents, top, repair):
    byp = {e['path']: e for e in ents}
    bad = []
    for e in ents:
        p = os.path.join(top, e['path'])
        try: st = os.lstat(p)
        except OSError: st = None
        ty = e['type']
        fe = byp.get(e.get('link')) if ty == 'hardlink' else e
        if ty == 'dir':
            good = st is not None and stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == e['mode']
            if not good and repair:
                if st is not None and not stat.S_ISDIR(st.st_mode): os.unlink(p)
                if st is None or not stat.S_ISDIR(st.st_mode): os.mkdir(p)
                os.chmod(p, e['mode'])
        elif ty == 'symlink':
            good = st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(p) == e['target']
            if not good and repair:
                if st is not None: shutil.rmtree(p) if stat.S_ISDIR(st.st_mode) else os.unlink(p)
                os.symlink(e['target'], p)
        else:
            good = (st is not None and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == fe['mode']
                    and st.st_size == fe['size'] and sha(rd(p)) == fe['sha256'])
            if not good and repair:
                if st is not None and stat.S_ISDIR(st.st_mode): shutil.rmtree(p)
                place(obj(fe), p, True)
        if not good: bad.append(e['path'])
    return bad
def flush(batch):
    # compressed chunks of this batch -> one zstd process -> verified, renamed into the store
    d, hs = batch
    if not hs: return
    try:
        r = subprocess.run(['zstd', '-dqf', '--rm', '--'] + [h + '.zst' for h in hs], cwd=d,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0: raise Exception('zstd -d failed: %s' % r.stderr.decode(errors='replace')[:200])
        for h in hs:
            p = os.path.join(d, h)
            if sha(rd(p)) != h: raise Exception('chunk %s damaged in transit' % h)
            os.makedirs(os.path.dirname(cp(h)), exist_ok=True)
            os.chmod(p, 0o644)
            os.rename(p, cp(h))
    finally:
        for n in os.listdir(d): os.unlink(os.path.join(d, n))
    del hs[:]
def main():
    if sys.argv[1] == 'have':
        # read-only: which chunks are missing, whether zstd can decompress here, and whether the
        # bundle is already materialised
        miss = [h for h in sys.stdin.read().split() if not os.path.exists(cp(h))]
        print(json.dumps({'missing': miss, 'zstd': shutil.which('zstd') is not None,
                          'present': len(sys.argv) > 3 and os.path.isdir(os.path.join(R, sys.argv[3]))}))
        return
    bid = sys.argv[3]
    final = os.path.join(R, bid)
    if sys.argv[1] == 'verify':
        mt = rd(os.path.join(MF, bid + '.json'))
        print(json.dumps({'bad_files': check(json.loads(mt)['entries'], final, False)}))
        return
    for d in (C, O, T, MF): os.makedirs(d, exist_ok=True)
    inp = sys.stdin.buffer
    mt = inp.read(int(inp.readline()))
    if sha(mt) != bid: raise Exception('manifest does not match bundle id %s' % bid)
    ents = json.loads(mt)['entries']
    zd = os.path.join(T, 'z.%d' % os.getpid())
    batch, pend = (zd, []), 0
    try:
        while True:
            line = inp.readline()
            if not line.strip(): break
            f = line.decode().split()
            h, n = f[0], int(f[1])
            cp(h)  # a chunk name, nothing else
            d = inp.read(n)
            if len(d) != n:
                flush(batch)
                raise Exception('stream ended early (push interrupted); the chunks received are kept')
            if len(f) > 2 and f[2] == 'z':
                os.makedirs(zd, exist_ok=True)
                with open(os.path.join(zd, h + '.zst'), 'wb') as o: o.write(d)
                batch[1].append(h)
                pend += n
                if pend >= 16 << 20 or len(batch[1]) >= 512:
                    flush(batch)
                    pend = 0
                continue
            if sha(d) != h: raise Exception('chunk %s damaged in transit' % h)
            wa(cp(h), d, 0o644)
        flush(batch)
    finally:
        shutil.rmtree(zd, ignore_errors=True)
    res = {'files': sum(1 for e in ents if e['type'] == 'file'), 'repaired': []}
    if os.path.isdir(final):
        res['repaired'] = check(ents, final, True)
        res['state'] = 'repaired' if res['repaired'] else 'verified'
    else:
        st = os.path.join(T, '%s.%d' % (bid, os.getpid()))
        shutil.rmtree(st, ignore_errors=True)
        try:
            os.mkdir(st, 0o755)
            for e in ents:
                p = os.path.join(st, e['path'])
                if e['type'] == 'dir': os.mkdir(p, 0o700)
                elif e['type'] == 'symlink': os.symlink(e['target'], p)
                elif e['type'] == 'hardlink': os.link(os.path.join(st, e['link']), p)
                else: place(obj(e), p, False)
            for e in reversed(ents):
                if e['type'] == 'dir': os.chmod(os.path.join(st, e['path']), e['mode'])
            bad = check(ents, st, False)
            if bad: raise Exception('materialised tree does not verify: %s' % bad[0])
            wa(os.path.join(MF, bid + '.json'), mt, 0o644)
            os.rename(st, final)
        except BaseException:
            shutil.rmtree(st, ignore_errors=True)
            raise
        res['state'] = 'created'
    print(json.dumps(res))
try:
    main()
except Exception as e:
    print(json.dumps({'error': str(e)}))
    sys.exit(1)
)PY";

Result<nlohmann::json> last_json_line(const ExecResult& r, const std::string& device) {
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  auto nl = out.rfind('\n');
  std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::string err = r.err;
    if (err.find("python3") != std::string::npos && r.exit_code == 127)
      return fail(ErrorCode::failure, fmt::format("{}: python3 is not installed", device),
                  "install python3 on the device (the materialiser needs only its standard library)");
    return fail(ErrorCode::failure,
                fmt::format("{}: materialiser failed (exit {}): {}", device, r.exit_code,
                            err.empty() ? out.substr(0, 300) : err.substr(0, 300)),
                "check passwordless sudo and python3 on the device (gedge device exec D --sudo -- python3 -V)");
  }
  if (j.contains("error"))
    return fail(ErrorCode::failure, fmt::format("{}: {}", device, j["error"].get<std::string>()),
                j["error"].get<std::string>().find("No space left") != std::string::npos
                    ? "free space on the device (nothing was made visible), then push again"
                    : "");
  return j;
}

std::vector<std::string> argv_for(const std::string& mode, const std::string& root, const std::string& id) {
  std::vector<std::string> a{"python3", "-c", kMaterialiser, mode, root};
  if (!id.empty()) a.push_back(id);
  return a;
}

// What the target says before anything is sent (read-only on the target).
struct Have {
  std::vector<std::string> missing;
  bool zstd = false;     // the target can decompress zstd (the zstd CLI is installed)
  bool present = false;  // ROOT/<id> exists
};

Result<Have> ask_have(SshSession& s, const std::string& root, const Bundle& b,
                      const std::vector<std::pair<std::string, uint64_t>>& chunks) {
  std::string want;
  for (const auto& [h, n] : chunks) want += h + "\n";
  GEDGE_TRY_ASSIGN(auto r, s.exec(argv_for("have", root, b.id), want, /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, s.target().name));
  Have out;
  for (const auto& h : j.value("missing", nlohmann::json::array())) {
    std::string x = h.is_string() ? h.get<std::string>() : "";
    if (x.size() == 64) out.missing.push_back(x);
  }
  out.zstd = j.value("zstd", false);
  out.present = j.value("present", false);
  return out;
}

// The bytes of one chunk as sent: the stored zstd frame when the target decompresses, else the
// raw content. Checks the frame's declared size against the manifest.
Result<std::string> chunk_payload(const Paths& paths, const std::string& h, uint64_t size, bool compressed) {
  auto path = detail::chunk_path(paths.runtimes / "chunks", h);
  auto bad = [&] {
    return fail(ErrorCode::failure, fmt::format("chunk {} is missing or corrupted in the local store", h),
                "run gedge runtime verify on the bundle and pack it again");
  };
  if (!compressed) {
    auto data = detail::read_chunk(path);
    if (!data || data->size() != size) return bad();
    return std::move(*data);
  }
  auto raw = detail::slurp(path);
  if (!raw || ZSTD_getFrameContentSize(raw->data(), raw->size()) != size) return bad();
  return std::move(*raw);
}

Result<PushResult> push_one(SshSession& s, const Paths& paths, const Bundle& b, const std::string& root,
                            bool dry_run, Reporter& rep, std::mutex& rep_mu) {
  PushResult res;
  res.target = s.target().name;
  res.root = root;
  res.dry_run = dry_run;
  auto chunks = manifest_chunks(b.manifest);
  std::unordered_map<std::string, uint64_t> sizes(chunks.begin(), chunks.end());
  GEDGE_TRY_ASSIGN(auto have, ask_have(s, root, b, chunks));
  res.compressed = have.zstd;
  res.chunks_sent = have.missing.size();
  res.chunks_skipped = chunks.size() - have.missing.size();
  if (dry_run) {
    for (const auto& h : have.missing) {
      uint64_t n = sizes[h];
      if (have.zstd) {
        struct stat st {};
        if (::stat(detail::chunk_path(paths.runtimes / "chunks", h).c_str(), &st) == 0)
          n = static_cast<uint64_t>(st.st_size);
      }
      res.bytes_sent += n;
      res.chunks_to_send.push_back(h);
    }
    res.state = have.present ? "would_verify" : "would_create";
    for (const auto& e : b.manifest["entries"])
      if (e["type"] == "file") ++res.files;
    return res;
  }

  std::string text = canonical_manifest(b.manifest);
  std::string payload = fmt::format("{}\n", text.size()) + text;
  for (const auto& h : have.missing) {
    if (cancel_requested()) return fail(ErrorCode::interrupted, "push interrupted");
    GEDGE_TRY_ASSIGN(auto data, chunk_payload(paths, h, sizes[h], have.zstd));
    payload += fmt::format("{} {}{}\n", h, data.size(), have.zstd ? " z" : "");
    payload += data;
    res.bytes_sent += data.size();
  }
  payload += "\n";
  {
    std::lock_guard lk(rep_mu);
    rep.step(res.target, fmt::format("sending {} chunks ({} bytes{}), {} already there", res.chunks_sent,
                                     res.bytes_sent, have.zstd ? ", zstd" : ", uncompressed: no zstd there",
                                     res.chunks_skipped));
  }
  GEDGE_TRY_ASSIGN(auto r, s.exec(argv_for("apply", root, b.id), payload, /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, res.target));
  res.state = j.value("state", "");
  res.files = j.value("files", uint64_t{0});
  for (const auto& p : j.value("repaired", nlohmann::json::array())) res.repaired.push_back(p.get<std::string>());
  res.files_repaired = res.repaired.size();
  {
    std::lock_guard lk(rep_mu);
    rep.step(res.target, fmt::format("{} {} under {}", res.state, b.id.substr(0, 12), root));
  }
  return res;
}

}  // namespace

Result<std::vector<std::string>> cluster_devices(Inventory& inv, const std::string& cluster) {
  GEDGE_TRY_ASSIGN(auto c, inv.query("SELECT name FROM clusters WHERE name = ?", {cluster}));
  if (c.empty()) return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", cluster), "see gedge cluster ls");
  GEDGE_TRY_ASSIGN(auto rows, inv.query("SELECT device FROM cluster_members WHERE cluster = ? ORDER BY device", {cluster}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r["device"].get<std::string>());
  if (out.empty()) return fail(ErrorCode::not_found, fmt::format("cluster '{}' has no members", cluster));
  return out;
}

std::vector<RemoteOutcome> push_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                       const RemotePushRequest& req, Reporter& rep) {
  std::vector<RemoteOutcome> out;
  std::vector<SshTarget> targets;
  std::vector<std::size_t> slot;
  for (const auto& d : req.devices) {
    auto t = device_target(inv, paths, d);
    out.push_back({d, std::nullopt, std::nullopt});
    if (!t) {
      out.back().error = t.error();
      continue;
    }
    targets.push_back(*t);
    slot.push_back(out.size() - 1);
  }
  FanOutOptions fo;
  fo.parallel = req.parallel;
  fo.ssh = default_ssh_options(paths, req.timeout_s);
  fo.ssh.connect_timeout_s = std::min(req.timeout_s, 30.0);
  fo.ssh.timeout_s = std::max(req.timeout_s, 1800.0);  // a push moves bundles, not one-liners
  std::mutex rep_mu;
  auto local_lock = detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false);
  auto results = fan_out<PushResult>(targets, fo, [&](SshSession& s) {
    return push_one(s, paths, b, req.root, req.dry_run, rep, rep_mu);
  });
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& o = out[slot[i]];
    if (results[i].result) {
      o.result = *results[i].result;
      if (!req.dry_run) (void)record_push(inv, b, *o.result);
    } else {
      o.error = results[i].result.error();
    }
  }
  return out;
}

Result<VerifyResult> verify_remote(const Paths& paths, Inventory& inv, const Bundle& b, const std::string& device,
                                   const std::string& root, double timeout_s) {
  GEDGE_TRY_ASSIGN(auto t, device_target(inv, paths, device));
  auto opts = default_ssh_options(paths, timeout_s);
  opts.timeout_s = std::max(timeout_s, 600.0);
  GEDGE_TRY_ASSIGN(auto s, SshSession::connect(t, opts));
  GEDGE_TRY_ASSIGN(auto r, s->exec(argv_for("verify", root, b.id), std::nullopt, /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, device));
  VerifyResult v;
  v.id = b.id;
  v.chunks = manifest_chunks(b.manifest).size();
  for (const auto& p : j.value("bad_files", nlohmann::json::array())) v.bad_files.push_back(p.get<std::string>());
  return v;
}

}  // namespace gedge::runtime
