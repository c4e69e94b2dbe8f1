// The remote materialiser: stores the chunks it is sent under ROOT/.gedge/rawchunks, builds
// ROOT/<id> in a staging dir through hardlinked objects, verifies every hash and renames it into
// place; an existing copy is verified and repaired. And the check of what it replies.
#include "remote_materialiser.hpp"

#include <fmt/format.h>

#include "gedge/runtime.hpp"

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

}  // namespace

namespace detail {

std::vector<std::string> materialiser_argv(const std::string& mode, const std::string& root,
                                           const std::string& id) {
  std::vector<std::string> a{"python3", "-c", kMaterialiser, mode, root};
  if (!id.empty()) a.push_back(id);
  return a;
}

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

}  // namespace gedge::runtime
