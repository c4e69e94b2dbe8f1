#!/usr/bin/env python3
"""A stand-in for a Docker Registry v2 endpoint on 127.0.0.1, for the registry TLS probe tests:
GET /v2/ answers STATUS (401 with a WWW-Authenticate challenge, as every authenticated registry
does, or 200). With --tls it serves HTTPS with a certificate for 127.0.0.1 signed by a CA it
makes in DIR (DIR/ca.crt); without, plain HTTP. Prints one JSON line {"port", "pid", "ca"}.

Usage: registry_double.py --dir DIR [--tls] [--status 401]"""

import argparse
import http.server
import json
import os
import ssl
import subprocess
import sys


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d):
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gedge registry test CA",
            "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", crt)
    return ca, crt, key


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--status", type=int, default=401)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            body = b'{"errors":[{"code":"UNAUTHORIZED"}]}' if a.status == 401 else b"{}"
            self.send_response(a.status if self.path.startswith("/v2/") else 404)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if a.status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="gedge-test"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ca = ""
    if a.tls:
        ca, crt, key = make_certs(a.dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(json.dumps({"port": srv.server_address[1], "pid": os.getpid(), "ca": ca}), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
