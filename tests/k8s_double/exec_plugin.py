#!/usr/bin/python3
"""An exec credential plugin for gedge's tests (client.authentication.k8s.io/v1 and v1beta1).

It appends one JSON line per run to $PLUGIN_RECORD (its argv, KUBERNETES_EXEC_INFO, what it read
on stdin, whether stdin is a terminal, $PLUGIN_EXTRA), then prints an ExecCredential with the
token $PLUGIN_TOKEN (expiring in $PLUGIN_EXPIRES_IN seconds when set). With $PLUGIN_FAIL set it
writes a message to stderr and exits 3 instead, as a plugin whose identity provider said no."""
import datetime
import json
import os
import sys

info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "{}"))
stdin = "" if os.isatty(0) else sys.stdin.read()
with open(os.environ["PLUGIN_RECORD"], "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "info": info, "stdin": stdin, "tty": os.isatty(0),
                        "extra": os.environ.get("PLUGIN_EXTRA")}) + "\n")
if os.environ.get("PLUGIN_FAIL"):
    sys.stderr.write("plugin: the identity provider said no (" + os.environ["PLUGIN_FAIL"] + ")\n")
    sys.exit(3)
status = {"token": os.environ.get("PLUGIN_TOKEN", "")}
if os.environ.get("PLUGIN_EXPIRES_IN"):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=int(os.environ["PLUGIN_EXPIRES_IN"]))
    status["expirationTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"apiVersion": info.get("apiVersion", "client.authentication.k8s.io/v1"),
                  "kind": "ExecCredential", "status": status}))
