// Readiness on container hosts: every container of a replica runs (and still runs a second
// later) and every published TCP port answers from this machine.
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "gedge/fd.hpp"
#include "hosts_internal.hpp"

namespace gedge::svc::detail::hosts {

bool has_tcp_ports(const Service& s) {
  if (!s.service_ports.empty()) return true;
  for (const auto& c : s.containers)
    for (const auto& p : c.ports)
      if (p.protocol == "TCP") return true;
  return false;
}

std::vector<int> tcp_host_ports(const Service& s) {
  std::vector<int> out(s.service_ports.begin(), s.service_ports.end());
  for (const auto& c : s.containers)
    for (const auto& p : c.ports)
      if (p.protocol == "TCP") out.push_back(p.external_port);
  return out;
}

// One TCP connect with a short timeout, from this machine, to the device's address: IPv4, IPv6
// (bare or in brackets) or a host name, each resolved address tried in turn (a name that
// resolves to both families answers on either).
bool port_answers(const std::string& host, int port) {
  std::string h = host.size() > 2 && host.front() == '[' && host.back() == ']'
                      ? host.substr(1, host.size() - 2)
                      : host;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return false;
  bool ok = false;
  for (addrinfo* ai = res; ai && !ok; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd.get(), POLLOUT, 0};
      if (::poll(&p, 1, 1000) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ok = ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
  }
  ::freeaddrinfo(res);
  return ok;
}

Result<std::string> container_state(Device& d, const std::string& name) {
  GEDGE_TRY_ASSIGN(auto r,
                   podman(d, {"container", "inspect", "--format", "{{.State.Status}}", name}));
  if (r.exit_code != 0) return std::string("missing");
  return trim(r.out);
}

// Waits until every container runs (and still runs a second later) and every TCP host port
// answers from here. failure with the container's last log lines when it exits.
Result<void> wait_up(Device& d, const std::vector<std::string>& names,
                     const std::vector<int>& ports, Clock::time_point deadline) {
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& n : names) {
      for (;;) {
        if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
        GEDGE_TRY_ASSIGN(auto st, container_state(d, n));
        if (st == "running") break;
        if (st == "exited" || st == "stopped" || st == "missing" || Clock::now() > deadline) {
          auto lg = podman(d, {"logs", "--tail", "5", n});
          std::string tail = lg && lg->exit_code == 0 ? last_lines(lg->out + lg->err, 5) : "";
          return fail(ErrorCode::failure,
                      fmt::format("device {}: container {} is {}{}{}", d.name, n,
                                  Clock::now() > deadline && st != "exited"
                                      ? "not running before the timeout (" + st + ")"
                                      : st,
                                  tail.empty() ? "" : "; last log lines: ", tail),
                      "see 'gedge svc logs' for the whole log");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
    }
    if (pass == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // crash right after start?
  }
  for (int p : ports) {
    while (!port_answers(d.target.host, p)) {
      if (cancel_requested()) return fail(ErrorCode::interrupted, "interrupted");
      if (Clock::now() > deadline)
        return fail(
            ErrorCode::failure,
            fmt::format("device {}: port {} does not answer ({}:{})", d.name, p, d.target.host, p),
            "the container runs but nothing listens on the port: check its command and ports");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  }
  return {};
}

}  // namespace gedge::svc::detail::hosts
