# needs: lab
"""gedge svc rm and the CPU pins it releases (issue 16 item 6): only the removed service's own
pins (owner gedge-NAME-<replica>) on its own cluster's devices go; `svc rm web` took web-api's pins
and web's on another cluster (owner LIKE 'gedge-web-%'), so later deploys pinned two services to
the same cores. Cluster c1 has one member, the lab host h1 (no containers of the service there:
rm asks podman over SSH and finds nothing to stop); the rows are written as `svc deploy` leaves
them."""

import os
import sqlite3

from gedge_e2e import GedgeTest


class SvcRmPinsTest(GedgeTest):
    def rows(self, sql, *args):
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def test_rm_releases_only_its_own_pins(self):
        self.require_lab()
        self.add_device("h1")
        now = "2026-12-03T00:00:00Z"
        db = sqlite3.connect(os.path.join(self.home, "gedge.db"))
        with db:
            for c in ("c1", "c2"):
                db.execute("INSERT INTO clusters (name, kind, profile, state, created_at, updated_at) "
                           "VALUES (?, 'devices', 'containers', 'ready', ?, ?)", (c, now, now))
            db.execute("INSERT INTO cluster_members (cluster, device, state) VALUES ('c1', 'h1', 'ready')")
            db.execute("INSERT INTO cluster_members (cluster, device, state) VALUES ('c2', 'd2', 'ready')")
            for name, cluster in (("web", "c1"), ("web", "c2"), ("web-api", "c2"), ("web-0-x", "c2")):
                db.execute("INSERT INTO services (name, cluster, spec, created_at, updated_at) "
                           "VALUES (?, ?, '{}', ?, ?)", (name, cluster, now, now))
            for dev, owner in (("h1", "gedge-web-0"), ("h1", "gedge-web-1"), ("h1", "gedge-web-api-0"),
                               ("d2", "gedge-web-0"), ("d2", "gedge-web-api-0"), ("d2", "gedge-web-0-x-0")):
                db.execute("INSERT INTO pins (device, owner, cpuset, created_at) VALUES (?, ?, '0-1', ?)",
                           (dev, owner, now))
        db.close()
        r = self.run_gedge("svc", "rm", "web", "--cluster", "c1", "--yes", "-o", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.rows("SELECT name, cluster FROM services ORDER BY name, cluster"),
                         [("web", "c2"), ("web-0-x", "c2"), ("web-api", "c2")])
        self.assertEqual(sorted(self.rows("SELECT device, owner FROM pins")),
                         [("d2", "gedge-web-0"), ("d2", "gedge-web-0-x-0"), ("d2", "gedge-web-api-0"),
                          ("h1", "gedge-web-api-0")])
