// push --device/--cluster: over SSH, ask the target which chunks it lacks, stream only those (with
// the manifest) to a small python3 materialiser passed as argv (`python3 -c`, data on stdin; no
// shell string is built from input), which stores them under ROOT/.gedge/rawchunks, builds
// ROOT/<id> in a staging dir through hardlinked objects, verifies every hash and renames it into
// place; an existing copy is verified and repaired.
#include <fmt/format.h>
#include <sys/stat.h>
#include <zstd.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "chunk_store.hpp"
#include "gedge/progress_bytes.hpp"
#include "gedge/runtime.hpp"
#include "gedge/ssh.hpp"
#include "gedge/stores.hpp"
#include "manifest.hpp"

namespace gedge::runtime {

namespace {

// The remote step (python3 stdlib only). Kept in one place; see the header comment.
const char* const kMaterialiser = R"PY(
import errno, hashlib, json, os, re, shutil, stat, subprocess, sys
R = sys.argv[2]
NF = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
KEEP, FMT = False, 1
def sha(b): return hashlib.sha256(b).hexdigest()
def chunked(e):
    # manifest format 2: a file of several chunks is named by its chunk list
    return FMT >= 2 and len(e['chunks']) > 1
def cid(e): return sha(('gedge-chunks\n' + ''.join(c['sha256'] + '\n' for c in e['chunks'])).encode())
def fok(e, b):
    # b is the file e: by its bytes, or chunk by chunk when it is named by its chunk list
    if not chunked(e): return sha(b) == e['sha256']
    if cid(e) != e['sha256']: return False
    v, o = memoryview(b), 0
    for c in e['chunks']:
        if sha(v[o:o + c['size']]) != c['sha256']: return False
        o += c['size']
    return o == len(b)
HEX = re.compile('[0-9a-f]{64}$')
def ck(h):
    if not HEX.match(h): raise Exception('not a chunk name: %r' % h[:80])
    return h
def odir(base, rel, create=False):
    # rel under the directory fd base, one component at a time, never following a link
    fd = os.dup(base)
    for n in rel.split('/'):
        if n in ('', '.'): continue
        if n == '..':
            os.close(fd)
            raise Exception('refusing .. in %r' % rel)
        if create:
            try: os.mkdir(n, 0o755, dir_fd=fd)
            except FileExistsError: pass
        try: nfd = os.open(n, NF | os.O_DIRECTORY, dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Exception('refusing to follow a link or non-directory at %s' % os.path.join(R, NAMES.get(base, ''), rel))
            raise
        finally: os.close(fd)
        fd = nfd
    return fd
SUBS, NAMES = {}, {}
def sub(base, key):
    # the fan-out dir (first two hex digits) of a store, created when missing, kept open
    if (base, key) not in SUBS: SUBS[(base, key)] = odir(base, key, True)
    return SUBS[(base, key)]
def lst(d, n):
    try: return os.stat(n, dir_fd=d, follow_symlinks=False)
    except OSError: return None
def rd(d, n):
    fd = os.open(n, NF, dir_fd=d)
    with os.fdopen(fd, 'rb') as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode): raise OSError(errno.EINVAL, 'not a regular file: %s' % n)
        return f.read()
def wa(d, n, data, mode):
    t = '.tmp.%d.%s' % (os.getpid(), os.urandom(6).hex())
    fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=d)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.rename(t, n, src_dir_fd=d, dst_dir_fd=d)
    except BaseException:
        try: os.unlink(t, dir_fd=d)
        except OSError: pass
        raise
def rm(d, n):
    st = lst(d, n)
    if st is None: return
    if stat.S_ISDIR(st.st_mode): shutil.rmtree('/proc/self/fd/%d/%s' % (d, n), ignore_errors=True)
    else: os.unlink(n, dir_fd=d)
def chm(top, rel, mode):
    fd = odir(top, rel)
    try: os.fchmod(fd, mode)
    finally: os.close(fd)
def am(e):
    # setuid/setgid/sticky and group/other write only when packed with --keep-special-modes;
    # files are hardlinks of shared objects, so read-only
    m = e['mode'] & (0o7777 if KEEP else 0o755)
    return m if e['type'] == 'dir' else m & ~0o222
def valid(ents):
    seen = {}
    for e in ents:
        p, ty = e.get('path'), e.get('type')
        if (not isinstance(p, str) or not p or p.startswith('/') or '\0' in p
                or any(c in ('', '.', '..') for c in p.split('/'))):
            raise Exception('unsafe path in manifest: %r' % str(p)[:200])
        par = p.rpartition('/')[0]
        if (par and seen.get(par) != 'dir') or (not par and ty != 'dir') or p in seen:
            raise Exception('manifest entry %r has no earlier parent directory or repeats' % p[:200])
        if ty == 'hardlink' and seen.get(e.get('link')) != 'file':
            raise Exception('manifest hardlink %r does not name an earlier file' % p[:200])
        if ty not in ('dir', 'file', 'symlink', 'hardlink') or not isinstance(e.get('mode'), int):
            raise Exception('manifest entry %r is malformed' % p[:200])
        seen[p] = ty
class Parents:
    # the directory of the current entry, reopened only when it changes (walk order)
    def __init__(s, top): s.top, s.rel, s.fd = top, None, None
    def get(s, rel):
        if s.rel != rel:
            s.drop()
            s.fd, s.rel = odir(s.top, rel), rel
        return s.fd
    def drop(s):
        if s.fd is not None: os.close(s.fd)
        s.rel = s.fd = None
def obj(e):
    mode = am(e)
    od, n = sub(O, e['sha256'][:2]), '%s.%o' % (e['sha256'], mode)
    st = lst(od, n)
    try:
        if st and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode and fok(e, rd(od, n)):
            return od, n, mode
    except OSError: pass
    parts = []
    for c in e['chunks']:
        h = ck(c['sha256'])
        cd = sub(C, h[:2])
        try: d = rd(cd, h)
        except OSError: raise Exception('chunk %s is missing on the target; push again' % h)
        if sha(d) != h:
            os.unlink(h, dir_fd=cd)
            raise Exception('chunk %s was corrupted on the target (removed); push again' % h)
        parts.append(d)
    b = b''.join(parts)
    if (cid(e) if chunked(e) else sha(b)) != e['sha256']:  # chunks checked one by one above
        raise Exception('file %s does not match its hash' % e['path'])
    rm(od, n)
    wa(od, n, b, mode)
    return od, n, mode
def place(o, d, n, replace):
    od, on, mode = o
    t = '.gedge-repair.' + n if replace else n
    try: os.unlink(t, dir_fd=d)
    except OSError: pass
    try: os.link(on, t, src_dir_fd=od, dst_dir_fd=d, follow_symlinks=False)
    except OSError: wa(d, t, rd(od, on), mode)
    if replace: os.rename(t, n, src_dir_fd=d, dst_dir_fd=d)
def check(ents, top, repair):
    byp = {e['path']: e for e in ents}
    bad = []
    P = Parents(top)
    try:
        for e in ents:
            par, _, n = e['path'].rpartition('/')
            try: d = P.get(par)
            except Exception:
                if repair: raise
                bad.append(e['path'])
                continue
            st = lst(d, n)
            ty = e['type']
            fe = byp.get(e.get('link')) if ty == 'hardlink' else e
            if ty == 'dir':
                good = st is not None and stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == am(e)
                if not good and repair:
                    if st is not None and not stat.S_ISDIR(st.st_mode): rm(d, n)
                    if st is None or not stat.S_ISDIR(st.st_mode): os.mkdir(n, 0o700, dir_fd=d)
                    chm(top, e['path'], am(e))
            elif ty == 'symlink':
                good = st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(n, dir_fd=d) == e['target']
                if not good and repair:
                    rm(d, n)
                    os.symlink(e['target'], n, dir_fd=d)
            else:
                good = (st is not None and stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == am(fe)
                        and st.st_size == fe['size'] and fok(fe, rd(d, n)))
                if not good and repair:
                    if st is not None and stat.S_ISDIR(st.st_mode): rm(d, n)
                    place(obj(fe), d, n, True)
            if not good: bad.append(e['path'])
    finally:
        P.drop()
    return bad
def flush(batch):
    # compressed chunks of this batch -> one zstd process -> verified, renamed into the store
    zfd, hs = batch
    if not hs: return
    try:
        r = subprocess.run(['zstd', '-dqf', '--rm', '--'] + [h + '.zst' for h in hs], cwd='/proc/self/fd/%d' % zfd,
                           pass_fds=(zfd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode != 0: raise Exception('zstd -d failed: %s' % r.stderr.decode(errors='replace')[:200])
        for h in hs:
            if sha(rd(zfd, h)) != h: raise Exception('chunk %s damaged in transit' % h)
            os.chmod(h, 0o644, dir_fd=zfd)
            os.rename(h, h, src_dir_fd=zfd, dst_dir_fd=sub(C, h[:2]))
    finally:
        for n in os.listdir(zfd): os.unlink(n, dir_fd=zfd)
    del hs[:]
def stores(create):
    global C, O, T, MF
    if create: os.makedirs(R, exist_ok=True)
    top = os.open(R, os.O_RDONLY | os.O_DIRECTORY)
    meta = odir(top, '.gedge', create)
    C, O, T, MF = (odir(meta, d, create) for d in ('rawchunks', 'rawobjects', 'tmp', 'manifests'))
    for fd, d in ((C, 'rawchunks'), (O, 'rawobjects'), (T, 'tmp'), (MF, 'manifests')): NAMES[fd] = '.gedge/' + d
    return top
def main():
    global KEEP, FMT
    if sys.argv[1] == 'have':
        # read-only: which chunks are missing, whether zstd can decompress here, and whether the
        # bundle is already materialised
        cs = os.path.join(R, '.gedge', 'rawchunks')
        miss = [h for h in sys.stdin.read().split() if not os.path.exists(os.path.join(cs, ck(h)[:2], h))]
        print(json.dumps({'missing': miss, 'zstd': shutil.which('zstd') is not None,
                          'present': len(sys.argv) > 3 and os.path.isdir(os.path.join(R, sys.argv[3]))}))
        return
    bid = ck(sys.argv[3])
    if sys.argv[1] == 'verify':
        top = stores(False)
        m = json.loads(rd(MF, bid + '.json'))
        KEEP, FMT = m.get('keep_special_modes') is True, m.get('format', 1)
        valid(m['entries'])
        fd = odir(top, bid)
        print(json.dumps({'bad_files': check(m['entries'], fd, False)}))
        return
    top = stores(True)
    inp = sys.stdin.buffer
    mt = inp.read(int(inp.readline()))
    if sha(mt) != bid: raise Exception('manifest does not match bundle id %s' % bid)
    m = json.loads(mt)
    KEEP, FMT = m.get('keep_special_modes') is True, m.get('format', 1)
    ents = m['entries']
    valid(ents)
    zn = 'z.%d' % os.getpid()
    rm(T, zn)
    zfd = odir(T, zn, True)
    batch, pend = (zfd, []), 0
    try:
        while True:
            line = inp.readline()
            if not line.strip(): break
            f = line.decode().split()
            h, n = ck(f[0]), int(f[1])
            d = inp.read(n)
            if len(d) != n:
                flush(batch)
                raise Exception('stream ended early (push interrupted); the chunks received are kept')
            if len(f) > 2 and f[2] == 'z':
                fd = os.open(h + '.zst', os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=zfd)
                with os.fdopen(fd, 'wb') as o: o.write(d)
                batch[1].append(h)
                pend += n
                if pend >= 16 << 20 or len(batch[1]) >= 512:
                    flush(batch)
                    pend = 0
                continue
            if sha(d) != h: raise Exception('chunk %s damaged in transit' % h)
            wa(sub(C, h[:2]), h, d, 0o644)
        flush(batch)
    finally:
        os.close(zfd)
        rm(T, zn)
    res = {'files': sum(1 for e in ents if e['type'] == 'file'), 'repaired': []}
    st = lst(top, bid)
    if st is not None and stat.S_ISDIR(st.st_mode):
        res['repaired'] = check(ents, odir(top, bid), True)
        res['state'] = 'repaired' if res['repaired'] else 'verified'
    else:
        sn = '%s.%d' % (bid, os.getpid())
        rm(T, sn)
        try:
            os.mkdir(sn, 0o755, dir_fd=T)
            sfd = odir(T, sn)
            P = Parents(sfd)
            for e in ents:
                par, _, n = e['path'].rpartition('/')
                d = P.get(par)
                if e['type'] == 'dir': os.mkdir(n, 0o700, dir_fd=d)
                elif e['type'] == 'symlink': os.symlink(e['target'], n, dir_fd=d)
                elif e['type'] == 'hardlink':
                    lp, _, ln = e['link'].rpartition('/')
                    lfd = odir(sfd, lp)
                    try: os.link(ln, n, src_dir_fd=lfd, dst_dir_fd=d, follow_symlinks=False)
                    finally: os.close(lfd)
                else: place(obj(e), d, n, False)
            P.drop()
            for e in reversed(ents):
                if e['type'] == 'dir': chm(sfd, e['path'], am(e))
            bad = check(ents, sfd, False)
            if bad: raise Exception('materialised tree does not verify: %s' % bad[0])
            wa(MF, bid + '.json', mt, 0o644)
            if st is not None: rm(top, bid)  # not a directory (a planted link?): replaced, never followed
            os.rename(sn, bid, src_dir_fd=T, dst_dir_fd=top)
        except BaseException:
            rm(T, sn)
            raise
        res['state'] = 'created'
    print(json.dumps(res))
try:
    main()
except Exception as e:
    print(json.dumps({'error': str(e)}))
    sys.exit(1)
)PY";

Result<nlohmann::json> last_json_line(const ExecResult& r, const std::string& device,
                                      std::string_view mode) {
  return detail::materialiser_reply(device, mode, r.out, r.err, r.exit_code);
}

std::vector<std::string> argv_for(const std::string& mode, const std::string& root,
                                  const std::string& id) {
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
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, s.target().name, "have"));
  Have out;
  // Only chunks of this bundle: a device never names what is read from the local store.
  std::unordered_map<std::string, bool> wanted;
  for (const auto& [h, n] : chunks) wanted[h] = true;
  for (const auto& h : j["missing"]) {
    const auto& x = h.get_ref<const std::string&>();
    if (!wanted.count(x))
      return fail(ErrorCode::failure,
                  fmt::format("{}: the target asked for a chunk the bundle does not have",
                              s.target().name));
    out.missing.push_back(x);
  }
  out.zstd = j["zstd"].get<bool>();
  out.present = j["present"].get<bool>();
  return out;
}

// The bytes of one chunk as sent: the stored zstd frame when the target decompresses, else the
// raw content. Checks the frame's declared size against the manifest.
Result<std::string> chunk_payload(const Paths& paths, const std::string& h, uint64_t size,
                                  bool compressed) {
  auto path = detail::chunk_path(paths.runtimes / "chunks", h);
  auto bad = [&] {
    return fail(ErrorCode::failure,
                fmt::format("chunk {} is missing or corrupted in the local store", h),
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

// One progress line for a push to every device: bytes sent of bytes planned (a device's payload
// counts once it is known; what a failed device did not send is taken back out) and devices
// finished. Reporter calls are serialised by `mu`.
struct PushProgress {
  Reporter& rep;
  std::mutex mu;
  bool draw_bytes = true;  // not for dry runs
  std::size_t devices = 0, done = 0;
  uint64_t planned = 0, sent = 0;
  void draw() {  // mu held
    if (!draw_bytes) return;
    rep.progress(bytes_task(fmt::format("pushing ({}/{} devices done)", done, devices)), sent,
                 planned);
  }
};

Result<PushResult> push_one(SshSession& s, const Paths& paths, const Bundle& b,
                            const std::string& root, bool dry_run, PushProgress& prog) {
  Reporter& rep = prog.rep;
  std::mutex& rep_mu = prog.mu;
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
    rep.step(res.target,
             fmt::format("sending {} chunks ({} bytes{}), {} already there", res.chunks_sent,
                         res.bytes_sent, have.zstd ? ", zstd" : ", uncompressed: no zstd there",
                         res.chunks_skipped));
    prog.planned += payload.size();
    prog.draw();
  }
  std::size_t mine = 0;  // of this payload, sent
  auto sent = s.exec(argv_for("apply", root, b.id), payload, /*sudo=*/true, [&](std::size_t n) {
    std::lock_guard lk(rep_mu);
    prog.sent += n - mine;
    mine = n;
    prog.draw();
  });
  if (!sent) {
    std::lock_guard lk(rep_mu);
    prog.planned -= payload.size() - mine;
    return std::unexpected(sent.error());
  }
  auto& r = *sent;
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, res.target, "apply"));
  res.state = j["state"].get<std::string>();  // types checked by materialiser_reply
  res.files = j["files"].get<uint64_t>();
  for (const auto& p : j["repaired"]) res.repaired.push_back(p.get<std::string>());
  res.files_repaired = res.repaired.size();
  {
    std::lock_guard lk(rep_mu);
    rep.step(res.target, fmt::format("{} {} under {}", res.state, b.id.substr(0, 12), root));
  }
  return res;
}

}  // namespace

namespace detail {

Result<nlohmann::json> materialiser_reply(const std::string& device, std::string_view mode,
                                          const std::string& out_in, const std::string& err,
                                          int exit_code) {
  std::string out = out_in;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  auto nl = out.rfind('\n');
  std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (err.find("python3") != std::string::npos && exit_code == 127)
      return fail(
          ErrorCode::failure, fmt::format("{}: python3 is not installed", device),
          "install python3 on the device (the materialiser needs only its standard library)");
    return fail(ErrorCode::failure,
                fmt::format("{}: materialiser failed (exit {}): {}", device, exit_code,
                            err.empty() ? out.substr(0, 300) : err.substr(0, 300)),
                "check passwordless sudo and python3 on the device (gedge device exec D --sudo -- "
                "python3 -V)");
  }
  auto odd = [&](std::string_view field, std::string_view want) {
    return fail(
        ErrorCode::failure,
        fmt::format("{}: unexpected reply from the materialiser ({}): '{}' is not {}", device, mode,
                    field, want),
        "the device's python3 or gedge's remote step misbehaved; run gedge device check on it");
  };
  if (j.contains("error")) {
    if (!j["error"].is_string()) return odd("error", "a string");
    const auto& e = j["error"].get_ref<const std::string&>();
    return fail(ErrorCode::failure, fmt::format("{}: {}", device, e.substr(0, 2000)),
                e.find("No space left") != std::string::npos
                    ? "free space on the device (nothing was made visible), then push again"
                    : "");
  }
  auto strings = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_array()) return false;
    for (const auto& v : j[k])
      if (!v.is_string()) return false;
    return true;
  };
  if (mode == "have") {
    if (!strings("missing")) return odd("missing", "a list of strings");
    if (!j.contains("zstd") || !j["zstd"].is_boolean()) return odd("zstd", "a boolean");
    if (!j.contains("present") || !j["present"].is_boolean()) return odd("present", "a boolean");
  } else if (mode == "apply") {
    if (!j.contains("state") || !j["state"].is_string() ||
        (j["state"] != "created" && j["state"] != "verified" && j["state"] != "repaired"))
      return odd("state", "created, verified or repaired");
    if (!j.contains("files") || !j["files"].is_number_unsigned()) return odd("files", "a count");
    if (!strings("repaired")) return odd("repaired", "a list of strings");
  } else if (mode == "verify") {
    if (!strings("bad_files")) return odd("bad_files", "a list of strings");
  }
  return j;
}

}  // namespace detail

Result<std::vector<std::string>> cluster_devices(Inventory& inv, const std::string& cluster) {
  ClusterStore clusters(inv);
  GEDGE_TRY_ASSIGN(bool known, clusters.exists(cluster));
  if (!known)
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' not found", cluster),
                "see gedge cluster ls");
  GEDGE_TRY_ASSIGN(auto rows, clusters.members(cluster));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r["device"].get<std::string>());
  std::sort(out.begin(), out.end());
  if (out.empty())
    return fail(ErrorCode::not_found, fmt::format("cluster '{}' has no members", cluster));
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
  PushProgress prog{rep};
  prog.draw_bytes = !req.dry_run;
  prog.devices = targets.size();
  fo.on_done = [&prog](std::size_t done, std::size_t, const std::string&, bool) {
    std::lock_guard lk(prog.mu);
    prog.done = done;
    prog.draw();
  };
  auto local_lock = detail::StoreLock::take(paths.runtimes / "lock", /*exclusive=*/false);
  auto results = fan_out<PushResult>(targets, fo, [&](SshSession& s) {
    return push_one(s, paths, b, req.root, req.dry_run, prog);
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

Result<VerifyResult> verify_remote(const Paths& paths, Inventory& inv, const Bundle& b,
                                   const std::string& device, const std::string& root,
                                   double timeout_s) {
  GEDGE_TRY_ASSIGN(auto t, device_target(inv, paths, device));
  auto opts = default_ssh_options(paths, timeout_s);
  opts.timeout_s = std::max(timeout_s, 600.0);
  GEDGE_TRY_ASSIGN(auto s, SshSession::connect(t, opts));
  GEDGE_TRY_ASSIGN(auto r, s->exec(argv_for("verify", root, b.id), std::nullopt, /*sudo=*/true));
  GEDGE_TRY_ASSIGN(auto j, last_json_line(r, device, "verify"));
  VerifyResult v;
  v.id = b.id;
  v.chunks = manifest_chunks(b.manifest).size();
  for (const auto& p : j["bad_files"]) v.bad_files.push_back(p.get<std::string>());
  return v;
}

}  // namespace gedge::runtime
