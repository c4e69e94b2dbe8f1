// Loading a topology (local, XML, synthetic) defensively; describe.cpp describes it for `tune
// show`.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string_view>

#include "gedge/document.hpp"
#include "topo_internal.hpp"

namespace gedge::topo {

namespace {

// Limits that keep a hostile input from exhausting memory: hwloc sizes bitmaps by the largest
// index and allocates every synthetic object up front.
constexpr std::uintmax_t kMaxXmlBytes = 64u << 20;
constexpr unsigned long long kMaxSyntheticObjects = 1u << 18;
constexpr unsigned kMaxIndex = 1u << 20;

// hwloc reports XML trouble on stderr; the library must not print, so keep it quiet.
void quiet_hwloc() {
  ::setenv("HWLOC_HIDE_ERRORS", "2", 0);
  ::setenv("HWLOC_XML_VERBOSE", "0", 0);
  ::setenv("HWLOC_SYNTHETIC_VERBOSE", "0", 0);
}

Result<void> check_synthetic(const std::string& s) {
  if (s.empty() || s.size() > 4096)
    return fail(ErrorCode::usage, "synthetic topology description is empty or too long",
                "example: --topology 'pack:2 numa:2 core:8 pu:2'");
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view(" :()[]=,._-#").find(c) != std::string_view::npos))
      return fail(ErrorCode::usage,
                  fmt::format("invalid character '{}' in synthetic topology '{}'", c, s),
                  "example: --topology 'pack:2 numa:2 core:8 pu:2'");
  // Multiply the arities ("type:N" tokens) to bound the object count before hwloc allocates.
  unsigned long long total = 1;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    auto colon = tok.find(':');
    if (colon == std::string::npos) continue;
    std::size_t i = colon + 1;
    unsigned long long n = 0;
    bool any = false;
    while (i < tok.size() && std::isdigit(static_cast<unsigned char>(tok[i]))) {
      n = n * 10 + static_cast<unsigned>(tok[i] - '0');
      any = true;
      if (n > kMaxSyntheticObjects) break;
      ++i;
    }
    if (!any) continue;
    total *= std::max<unsigned long long>(n, 1);
    if (total > kMaxSyntheticObjects)
      return fail(ErrorCode::usage, fmt::format("synthetic topology '{}' is too large", s),
                  fmt::format("at most {} objects", kMaxSyntheticObjects));
  }
  return {};
}

Result<std::string> read_xml_file(const std::string& path) {
  auto r = read_input_file(path, kMaxXmlBytes, "topology file");
  if (!r && r.error().code == ErrorCode::not_found)
    r.error().hint =
        "give an XML file written by 'lstopo-no-graphics --of xml' or a synthetic description";
  return r;
}

// hwloc sizes bitmaps by the largest index it is given and a distance matrix by nbobjs squared,
// before anything is checked: a 570-byte document with a PU at os_index 4000000000 cost 1 GB in
// the probe child alone. The text is scanned first, and such a document never reaches hwloc.
constexpr std::size_t kMaxXmlDepth = 64;           // real topologies nest about 10 deep
constexpr std::size_t kMaxXmlElements = 1u << 20;  // objects, info, distances, support...
constexpr std::size_t kMaxXmlObjects = 1u << 16;   // a 4096-PU machine has about 10 000

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t k = 0; k < prefix.size(); ++k)
    if (std::tolower(static_cast<unsigned char>(s[k])) != prefix[k]) return false;
  return true;
}

// A decimal number of at most 10 digits, nothing else (hwloc reads these with strtoul, which
// takes "-1" as ULONG_MAX).
std::optional<unsigned long long> decimal(std::string_view v) {
  if (v.empty() || v.size() > 10) return std::nullopt;
  unsigned long long n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n;
}

Result<void> bound_xml(std::string_view xml, const std::string& label) {
  auto bad = [&](std::size_t pos, const std::string& msg) -> Result<void> {
    auto line = 1 + std::count(xml.begin(), xml.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
    return fail(ErrorCode::usage, fmt::format("topology XML {}:{}: {}", label, line, msg),
                "produce the file with 'lstopo-no-graphics --of xml -' and do not edit it by hand");
  };
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  const std::size_t n = xml.size();
  std::size_t depth = 0, elements = 0, objects = 0, i = 0;
  while ((i = xml.find('<', i)) != std::string_view::npos) {
    const std::size_t at = i;
    auto skip_to = [&](std::string_view end, const char* what) -> bool {
      auto e = xml.find(end, i);
      if (e == std::string_view::npos) return false;
      i = e + end.size();
      (void)what;
      return true;
    };
    if (xml.compare(i, 4, "<!--") == 0) {
      if (!skip_to("-->", "comment")) return bad(at, "unterminated comment");
      continue;
    }
    if (xml.compare(i, 9, "<![CDATA[") == 0) {
      if (!skip_to("]]>", "CDATA")) return bad(at, "unterminated CDATA section");
      continue;
    }
    if (xml.compare(i, 2, "<?") == 0) {
      if (!skip_to("?>", "processing instruction"))
        return bad(at, "unterminated processing instruction");
      continue;
    }
    if (xml.compare(i, 2, "<!") == 0) {
      // <!DOCTYPE topology SYSTEM "hwloc2.dtd">: an internal subset could declare entities or
      // default attribute values that the text scan would not see.
      auto e = xml.find('>', i);
      if (e == std::string_view::npos) return bad(at, "unterminated declaration");
      if (xml.substr(i, e - i).find('[') != std::string_view::npos)
        return bad(at, "an internal DTD subset is not allowed");
      i = e + 1;
      continue;
    }
    if (xml.compare(i, 2, "</") == 0) {
      auto e = xml.find('>', i);
      if (e == std::string_view::npos) return bad(at, "unterminated end tag");
      if (depth > 0) --depth;
      i = e + 1;
      continue;
    }
    // A start tag: its name and attributes.
    ++i;
    const std::size_t name_at = i;
    while (i < n && !is_space(xml[i]) && xml[i] != '>' && xml[i] != '/') ++i;
    const std::string_view name = xml.substr(name_at, i - name_at);
    if (++elements > kMaxXmlElements)
      return bad(at, fmt::format("more than {} elements", kMaxXmlElements));
    if (name == "object" && ++objects > kMaxXmlObjects)
      return bad(at, fmt::format("more than {} objects", kMaxXmlObjects));
    std::string_view type, os_index;
    std::size_t os_index_at = at;
    bool closed = false;
    while (!closed) {
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n) return bad(at, fmt::format("unterminated <{}> tag", name));
      if (xml[i] == '>') {
        ++depth;
        ++i;
        break;
      }
      if (xml[i] == '/') {
        if (i + 1 >= n || xml[i + 1] != '>')
          return bad(at, fmt::format("malformed <{}> tag", name));
        i += 2;
        closed = true;
        break;
      }
      const std::size_t attr_at = i;
      while (i < n && !is_space(xml[i]) && xml[i] != '=' && xml[i] != '>' && xml[i] != '/') ++i;
      const std::string_view attr = xml.substr(attr_at, i - attr_at);
      while (i < n && is_space(xml[i])) ++i;
      if (attr.empty() || i >= n || xml[i] != '=')
        return bad(at, fmt::format("malformed attribute in <{}>", name));
      ++i;
      while (i < n && is_space(xml[i])) ++i;
      if (i >= n || (xml[i] != '"' && xml[i] != '\''))
        return bad(at, fmt::format("malformed attribute {}", attr));
      const char quote = xml[i++];
      auto e = xml.find(quote, i);
      if (e == std::string_view::npos)
        return bad(at, fmt::format("unterminated attribute {}", attr));
      const std::string_view value = xml.substr(i, e - i);
      i = e + 1;
      if (attr == "type") {
        type = value;
      } else if (attr == "os_index") {
        os_index = value;
        os_index_at = attr_at;
      } else if (attr == "nbobjs") {
        // Every one of the nbobjs x nbobjs values is in the document (at least 2 bytes each).
        auto v = decimal(value);
        if (!v || *v == 0 || *v > 65536 || *v * *v * 2 > n)
          return bad(attr_at, fmt::format("nbobjs=\"{}\" does not match the document's size",
                                          value.substr(0, 24)));
      } else if (attr == "length") {
        auto v = decimal(value);
        if (!v || *v > n)
          return bad(attr_at, fmt::format("length=\"{}\" is out of range", value.substr(0, 24)));
      } else if (attr.ends_with("cpuset") || attr.ends_with("nodeset")) {
        // hwloc's bitmap strings: 32-bit words separated by commas ("0x000000ff,0x00000001").
        if (value.find('&') != std::string_view::npos)
          return bad(attr_at, fmt::format("{} has character references", attr));
        if (static_cast<std::size_t>(std::count(value.begin(), value.end(), ',')) >= kMaxIndex / 32)
          return bad(attr_at, fmt::format("{} has indexes of {} or more", attr, kMaxIndex));
      }
    }
    (void)closed;
    if (depth > kMaxXmlDepth)
      return bad(at, fmt::format("elements nested more than {} deep", kMaxXmlDepth));
    // hwloc makes a bitmap as large as a PU's or NUMA node's OS index. I/O and Misc objects keep
    // other numbers there (hwloc 1.x wrote a PCI device's bus id).
    if (name == "object" && !os_index.empty()) {
      bool io = starts_with_nocase(type, "os") || starts_with_nocase(type, "pci") ||
                starts_with_nocase(type, "bridge") || starts_with_nocase(type, "hostbridge") ||
                starts_with_nocase(type, "misc");
      auto v = decimal(os_index);
      if (!io && (!v || *v >= kMaxIndex))
        return bad(os_index_at,
                   fmt::format("{} os_index=\"{}\" is out of range (at most {})",
                               type.substr(0, 32), os_index.substr(0, 24), kMaxIndex - 1));
    }
  }
  return {};
}

Result<void> check_xml_text(const std::string& xml, const std::string& label) {
  if (xml.size() > kMaxXmlBytes)
    return fail(ErrorCode::usage, fmt::format("topology XML from {} is too large", label));
  if (xml.find('\0') != std::string::npos)
    return fail(ErrorCode::usage, fmt::format("topology XML from {} contains NUL bytes", label));
  auto first = xml.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || xml[first] != '<' || xml.find("<topology") == std::string::npos)
    return fail(ErrorCode::usage, fmt::format("{} is not an hwloc topology XML document", label),
                "produce one with 'lstopo-no-graphics --of xml -'");
  // hwloc XML names its DTD but never declares entities (expansion attacks): refuse those.
  if (xml.find("<!ENTITY") != std::string::npos)
    return fail(ErrorCode::usage,
                fmt::format("topology XML from {} declares entities; refused", label));
  return bound_xml(xml, label);
}

// hwloc 2.9's XML importer crashes on some malformed documents (a PU without complete_cpuset
// segfaults lstopo too). Untrusted XML is therefore parsed once in a child process first; only
// a document the child survives is loaded here.
Result<void> probe_xml_in_child(const std::string& xml, const std::string& label) {
  pid_t pid = ::fork();
  if (pid < 0)
    return fail(ErrorCode::failure, fmt::format("fork failed: {}", std::strerror(errno)));
  if (pid == 0) {
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL})
      ::signal(sig, SIG_DFL);  // no host handlers
    ::alarm(20);
    hwloc_topology_t t = nullptr;
    if (hwloc_topology_init(&t) != 0) ::_exit(3);
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    hwloc_topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL);
    hwloc_topology_set_type_filter(t, HWLOC_OBJ_MEMCACHE, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (hwloc_topology_set_xmlbuffer(t, xml.c_str(), static_cast<int>(xml.size() + 1)) != 0)
      ::_exit(2);
    if (hwloc_topology_load(t) != 0) ::_exit(2);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return fail(ErrorCode::failure, "waitpid failed");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFSIGNALED(status))
    return fail(
        ErrorCode::usage,
        fmt::format("malformed topology from {}: hwloc's XML parser crashed on it (signal {})",
                    label, WTERMSIG(status)),
        "produce the file with 'lstopo-no-graphics --of xml -' and do not edit it by hand");
  return fail(ErrorCode::usage, fmt::format("malformed topology from {}", label),
              "produce one with 'lstopo-no-graphics --of xml -' (hwloc 2.x)");
}

Result<void> sanity_check(hwloc_topology_t t, const std::string& label) {
  hwloc_const_cpuset_t cs = hwloc_topology_get_complete_cpuset(t);
  int npu = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  if (!cs || hwloc_bitmap_iszero(cs) || npu <= 0)
    return fail(ErrorCode::usage, fmt::format("topology from {} has no processing units", label));
  if (hwloc_bitmap_last(cs) < 0 || static_cast<unsigned>(hwloc_bitmap_last(cs)) >= kMaxIndex)
    return fail(ErrorCode::usage,
                fmt::format("topology from {} has PU indexes out of range", label));
  hwloc_const_nodeset_t ns = hwloc_topology_get_complete_nodeset(t);
  if (ns && hwloc_bitmap_last(ns) >= 0 && static_cast<unsigned>(hwloc_bitmap_last(ns)) >= kMaxIndex)
    return fail(ErrorCode::usage,
                fmt::format("topology from {} has NUMA indexes out of range", label));
  return {};
}

}  // namespace

IndexSet to_set(hwloc_const_bitmap_t b) {
  IndexSet s;
  if (!b || hwloc_bitmap_weight(b) < 0) return s;  // infinite sets are not listed
  int i;
  hwloc_bitmap_foreach_begin(i, b) {
    s.insert(static_cast<unsigned>(i));
  }
  hwloc_bitmap_foreach_end();
  return s;
}

Bitmap to_bitmap(const IndexSet& s) {
  auto b = make_bitmap();
  for (unsigned i : s) hwloc_bitmap_set(b.get(), i);
  return b;
}

std::string type_name(hwloc_obj_t o) {
  char buf[64];
  hwloc_obj_type_snprintf(buf, sizeof buf, o, 0);
  return buf;
}

TopologySource TopologySource::from_arg(const std::string& arg) {
  TopologySource s;
  std::error_code ec;
  bool looks_xml = arg.size() > 4 && arg.compare(arg.size() - 4, 4, ".xml") == 0;
  if (looks_xml || (arg.find(':') == std::string::npos && std::filesystem::exists(arg, ec))) {
    s.kind = Kind::xml_file;
  } else {
    s.kind = Kind::synthetic;
  }
  s.value = arg;
  s.label = s.kind == Kind::synthetic ? fmt::format("synthetic '{}'", arg) : arg;
  return s;
}

Topology::Topology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Topology::Topology(Topology&&) noexcept = default;
Topology& Topology::operator=(Topology&&) noexcept = default;
Topology::~Topology() = default;

Result<Topology> Topology::load(const TopologySource& src_in) {
  quiet_hwloc();
  TopologySource src = src_in;
  if (src.label.empty()) src.label = src.kind == TopologySource::Kind::local ? "local" : src.value;
  std::string xml;
  if (src.kind == TopologySource::Kind::xml_file) {
    GEDGE_TRY_ASSIGN(xml, read_xml_file(src.value));
    GEDGE_TRY(check_xml_text(xml, src.label));
    GEDGE_TRY(probe_xml_in_child(xml, src.label));
  } else if (src.kind == TopologySource::Kind::xml_buffer) {
    xml = src.value;
    GEDGE_TRY(check_xml_text(xml, src.label));
    GEDGE_TRY(probe_xml_in_child(xml, src.label));
  } else if (src.kind == TopologySource::Kind::synthetic) {
    GEDGE_TRY(check_synthetic(src.value));
  }

  auto impl = std::make_unique<Impl>();
  impl->src = src;
  if (hwloc_topology_init(&impl->t) != 0)
    return fail(ErrorCode::internal, "hwloc_topology_init failed");
  hwloc_topology_set_io_types_filter(impl->t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  hwloc_topology_set_cache_types_filter(impl->t, HWLOC_TYPE_FILTER_KEEP_ALL);
  hwloc_topology_set_type_filter(impl->t, HWLOC_OBJ_MEMCACHE, HWLOC_TYPE_FILTER_KEEP_ALL);
  int rc = 0;
  switch (src.kind) {
    case TopologySource::Kind::local:
      hwloc_topology_set_flags(
          impl->t, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED | HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM);
      break;
    case TopologySource::Kind::xml_file:
    case TopologySource::Kind::xml_buffer:
      rc = hwloc_topology_set_xmlbuffer(impl->t, xml.c_str(), static_cast<int>(xml.size() + 1));
      break;
    case TopologySource::Kind::synthetic:
      rc = hwloc_topology_set_synthetic(impl->t, src.value.c_str());
      break;
  }
  if (rc != 0) {
    if (src.kind == TopologySource::Kind::synthetic)
      return fail(ErrorCode::usage, fmt::format("invalid synthetic topology '{}'", src.value),
                  "example: --topology 'pack:2 numa:2 core:8 pu:2' (see hwloc's lstopo --input)");
    return fail(ErrorCode::usage, fmt::format("cannot read topology XML from {}", src.label));
  }
  if (hwloc_topology_load(impl->t) != 0)
    return fail(ErrorCode::usage, fmt::format("malformed topology from {}", src.label),
                "produce one with 'lstopo-no-graphics --of xml -' (hwloc 2.x)");
  GEDGE_TRY(sanity_check(impl->t, src.label));
  return Topology(std::move(impl));
}

bool Topology::is_this_system() const {
  return hwloc_topology_is_thissystem(impl_->t) == 1;
}
const TopologySource& Topology::source() const {
  return impl_->src;
}
hwloc_topology* Topology::raw() const {
  return impl_->t;
}
IndexSet Topology::all_pus() const {
  return to_set(hwloc_topology_get_complete_cpuset(impl_->t));
}
IndexSet Topology::allowed_pus() const {
  auto b = make_bitmap();
  hwloc_bitmap_and(b.get(), hwloc_topology_get_allowed_cpuset(impl_->t),
                   hwloc_topology_get_complete_cpuset(impl_->t));
  return to_set(b.get());
}
IndexSet Topology::all_nodes() const {
  return to_set(hwloc_topology_get_complete_nodeset(impl_->t));
}

IndexSet Topology::nodes_near(const IndexSet& pus) const {
  IndexSet out;
  auto b = to_bitmap(pus);
  hwloc_obj_t n = nullptr;
  while ((n = hwloc_get_next_obj_by_type(impl_->t, HWLOC_OBJ_NUMANODE, n)) != nullptr)
    if (n->cpuset && hwloc_bitmap_intersects(n->cpuset, b.get())) out.insert(n->os_index);
  return out;
}

}  // namespace gedge::topo
