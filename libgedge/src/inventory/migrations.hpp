// Numbered schema migrations. Append only: never edit or reorder a shipped migration.
#pragma once

#include <array>
#include <string_view>

namespace gedge::inventory_detail {

inline constexpr std::array<std::string_view, 6> kMigrations = {
    // 1: the initial schema for every module.
    R"SQL(
CREATE TABLE devices (
  name TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  port INTEGER NOT NULL DEFAULT 22,
  user TEXT NOT NULL,
  identity TEXT,
  tier TEXT,
  site TEXT,
  labels TEXT NOT NULL DEFAULT '{}',
  host_key_type TEXT,
  host_key_fp TEXT,
  token_hash TEXT,
  facts TEXT NOT NULL DEFAULT '{}',
  topology_xml TEXT,
  status TEXT NOT NULL DEFAULT 'unknown',
  last_seen TEXT,
  rtt_ms REAL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE clusters (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,               -- devices | kubernetes
  profile TEXT,                     -- containers | k3s | k8s (device clusters)
  server TEXT,
  registry TEXT,
  monitoring INTEGER NOT NULL DEFAULT 0,
  kubeconfig TEXT,                  -- path only; credentials stay in that file
  context TEXT,
  api_server TEXT,
  tier TEXT,
  state TEXT NOT NULL DEFAULT 'new',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE cluster_members (
  cluster TEXT NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
  device TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'member',
  metrics_url TEXT,
  state TEXT NOT NULL DEFAULT 'pending',
  PRIMARY KEY (cluster, device)
);
CREATE TABLE build_journal (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  cluster TEXT NOT NULL,
  run_id TEXT NOT NULL,
  device TEXT NOT NULL,
  step TEXT NOT NULL,
  status TEXT NOT NULL,             -- ok | changed | failed | unreachable | skipped
  message TEXT,
  at TEXT NOT NULL
);
CREATE INDEX build_journal_cluster ON build_journal(cluster, device);
CREATE TABLE services (
  name TEXT NOT NULL,
  cluster TEXT NOT NULL,
  namespace TEXT NOT NULL DEFAULT 'default',
  spec TEXT NOT NULL,
  placement TEXT,
  state TEXT NOT NULL DEFAULT 'deployed',
  replicas INTEGER,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (name, cluster)
);
CREATE TABLE pins (
  device TEXT NOT NULL,
  owner TEXT NOT NULL,              -- container name or workload
  cpuset TEXT NOT NULL,
  mems TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (device, owner)
);
CREATE TABLE runtimes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  manifest TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE runtime_pushes (
  runtime_id TEXT NOT NULL,
  target TEXT NOT NULL,
  root TEXT NOT NULL,
  pushed_at TEXT NOT NULL,
  PRIMARY KEY (runtime_id, target)
);
CREATE TABLE rtts (
  src TEXT NOT NULL,
  dst TEXT NOT NULL,
  ms REAL NOT NULL,
  measured_at TEXT NOT NULL,
  PRIMARY KEY (src, dst)
);
CREATE TABLE sched_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state TEXT NOT NULL,              -- enqueued | dispatched | scheduling | completed | failed | canceled
  priority INTEGER NOT NULL DEFAULT 0,
  policy TEXT NOT NULL,
  spec TEXT NOT NULL,
  options TEXT NOT NULL DEFAULT '{}',
  attempts INTEGER NOT NULL DEFAULT 0,
  placements TEXT,
  error TEXT,
  claimed_by TEXT,
  queue_pos REAL NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
)SQL",
    // 2: the device (or "localhost") running a device cluster's Prometheus server (issue 18).
    R"SQL(
ALTER TABLE clusters ADD COLUMN prometheus TEXT;
)SQL",
    // 3: one resolved connection record per device (issue 13): the ssh config alias it was added
    // by, the user certificate, the agent socket, how it authenticated (identity | gedge_key |
    // agent) and its ProxyJump hop as JSON {host, port, user, identity, host_key: {type,
    // fingerprint, public_key}}.
    R"SQL(
ALTER TABLE devices ADD COLUMN alias TEXT;
ALTER TABLE devices ADD COLUMN certificate TEXT;
ALTER TABLE devices ADD COLUMN identity_agent TEXT;
ALTER TABLE devices ADD COLUMN auth TEXT;
ALTER TABLE devices ADD COLUMN proxy_jump TEXT;
)SQL",
    // 4: scheduler request leases (issue 16 item 7): when a request was claimed and by which
    // runner (JSON: host, boot_id, pid, start), so a dead runner's claims can be re-queued.
    R"SQL(
ALTER TABLE sched_requests ADD COLUMN claimed_at TEXT;
ALTER TABLE sched_requests ADD COLUMN runner TEXT;
)SQL",
    // 5: the Ansible groups a device was imported with, ancestors (":children") included, as a
    // JSON array; `--group NAME` selects by it (issue 13).
    R"SQL(
ALTER TABLE devices ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
)SQL",
    // 6: when a re-queued request is due again (seconds since the epoch; 0: at once), so a run
    // takes the next due request with one indexed query instead of reading every enqueued row and
    // parsing its updated_at (issue 12). Requests waiting out a backoff keep their due time
    // (updated_at + 30 s doubling per attempt, at most 600 s).
    R"SQL(
ALTER TABLE sched_requests ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
UPDATE sched_requests
   SET not_before = COALESCE(CAST(strftime('%s', updated_at) AS INTEGER), 0) +
                    CASE WHEN attempts >= 6 THEN 600 ELSE 30 << (attempts - 1) END
 WHERE state = 'enqueued' AND attempts > 0;
CREATE INDEX sched_requests_queue ON sched_requests(state, queue_pos, id);
CREATE INDEX sched_requests_pos ON sched_requests(queue_pos);
)SQL",
};

}  // namespace gedge::inventory_detail
