# -*- coding: utf-8 -*-
# gedge's stdout callback: one JSON object per line per host per task, written to the file
# descriptor named by $GEDGE_EVENTS_FD (or stdout when unset), flushed as each event happens.
# gedge reads these lines while ansible-playbook runs to show progress and write its journal.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: gedge_events
    type: stdout
    short_description: JSON lines per host per task, for gedge
    description:
      - Writes one JSON object per event (play_start, task_start, ok, failed, unreachable,
        skipped, stats) to the file descriptor in GEDGE_EVENTS_FD, or to stdout.
"""

import json
import os

from ansible.plugins.callback import CallbackBase

_MAX_MSG = 2000


def _short(value):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_MSG]


def _message(res):
    for key in ("msg", "stderr", "reason"):
        val = res.get(key)
        if val:
            return _short(val)
    if res.get("results"):  # loops: the first item with a message
        for item in res["results"]:
            if isinstance(item, dict) and (item.get("msg") or item.get("stderr")):
                return _message(item)
    return ""


def _diff_text(res):
    diffs = res.get("diff")
    if not diffs:
        return ""
    if isinstance(diffs, dict):
        diffs = [diffs]
    out = []
    for d in diffs:
        if not isinstance(d, dict):
            continue
        if d.get("prepared"):
            out.append(str(d["prepared"]))
            continue
        before, after = d.get("before"), d.get("after")
        if before == after:
            continue
        hdr = d.get("after_header") or d.get("before_header") or ""
        out.append("--- %s\n+++ %s\n-%s\n+%s" % (d.get("before_header", ""), hdr,
                                               _short(before), _short(after)))
    return "\n".join(out)[:_MAX_MSG]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "gedge_events"

    def __init__(self):
        super(CallbackModule, self).__init__()
        fd = os.environ.get("GEDGE_EVENTS_FD")
        if fd:
            self._out = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8")
        else:
            self._out = None

    def _emit(self, obj):
        line = json.dumps(obj, sort_keys=True, default=str)
        if self._out is not None:
            self._out.write(line + "\n")
            self._out.flush()
        else:
            self._display.display(line)

    def _result(self, kind, result, extra=None):
        res = result._result or {}
        ev = {
            "event": kind,
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "changed": bool(res.get("changed", False)),
            "msg": _message(res),
        }
        diff = _diff_text(res)
        if diff:
            ev["diff"] = diff
        if extra:
            ev.update(extra)
        self._emit(ev)

    def v2_playbook_on_play_start(self, play):
        self._emit({"event": "play_start", "play": play.get_name()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit({"event": "task_start", "task": task.get_name()})

    def v2_runner_on_ok(self, result):
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("failed", result, {"ignored": bool(ignore_errors)})

    def v2_runner_on_unreachable(self, result):
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):
        res = result._result or {}
        check_skip = "check mode" in str(res.get("msg", ""))
        self._result("skipped", result, {"check_mode_skip": check_skip})

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            s = stats.summarize(h)
            hosts[h] = {k: s.get(k, 0) for k in ("ok", "changed", "failures", "unreachable",
                                                  "skipped", "rescued", "ignored")}
        self._emit({"event": "stats", "hosts": hosts})
