#!/usr/bin/python3
"""A small HTTP CONNECT proxy on loopback for gedge's tests (kubeconfig proxy-url, HTTPS_PROXY).

It tunnels CONNECT requests to loopback targets only (anything else gets 403), appends one line
"CONNECT host:port" per tunnel to --log, and prints {"port": P, "pid": N} on stdout when ready.
--map NAME=ADDR resolves the host name NAME to the loopback address ADDR at the proxy (as a
real proxy resolves names for its clients), so a test can use a name no resolver knows.
Plain (non-CONNECT) requests get 405: gedge talks TLS to the API server through the tunnel.

Usage: connect_proxy.py --log FILE [--port 0] [--map NAME=ADDR ...]
"""
import argparse
import ipaddress
import json
import os
import select
import socket
import socketserver
import threading


class Handler(socketserver.StreamRequestHandler):
    rbufsize = 0  # unbuffered: no byte of the tunnel is left behind in a reader's buffer

    def handle(self):
        line = self.rfile.readline(65536).decode("latin-1").strip()
        while True:  # headers
            h = self.rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        target = parts[1]
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        host = self.server.names.get(host, host)
        with self.server.log_lock, open(self.server.log, "a") as f:
            f.write(f"CONNECT {target}\n")
        try:
            ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
        if not ok:
            self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        socks = [client, upstream]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 60)
                if not r:
                    break
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--map", action="append", default=[], help="NAME=ADDR (a loopback address)")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.log = a.log
    srv.names = dict(m.split("=", 1) for m in a.map)
    srv.log_lock = threading.Lock()
    open(a.log, "a").close()
    print(json.dumps({"port": srv.server_address[1], "pid": os.getpid()}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
