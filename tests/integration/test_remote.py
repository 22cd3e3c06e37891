"""Remote GET across real engine processes: a page stored through one engine is read through
another, over the TCP data plane (protocol = "tcp"), and copied out byte for byte.

Standard library only. The engines are test_cluster.py's: engine i binds everything on its own
loopback address 127.0.0.(i+1) (node id n(i+1)), all name one discovery_addr, and they use the
adaptive idle policy and small segments so that several share a 2-core machine. Pages are stored
and read through libpeercache (pcclient.py); the directory is filled asynchronously after a SET
commits, so every test first polls, against a deadline, until EXISTS through the reading engine
counts the keys, and only then asserts GETs. The data port is spoken to by hand too
(verbs/data_proto.h after control/auth.h's open-mode handshake), to check what the owner refuses.

Timings are liveness bounds (a GET must return, never hang: within 3 x request_timeout), never
speed checks.

scripts/softroce-test.sh runs the RemoteGet cases with protocol = "rdma" over Soft-RoCE, through
the environment: PEERCACHE_TEST_PROTOCOL=rdma, PEERCACHE_TEST_HOSTS (the addresses engine 0, 1,
... bind, one per RDMA device), PEERCACHE_TEST_RDMA_DEVICES (engine i's device_name) and
PEERCACHE_TEST_GID_INDEX. Every engine must then log that it reads over rdma (no silent tcp
fallback).
"""

import errno
import hashlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import test_cluster as tc  # noqa: E402  (imported as a module: its tests are not re-run here)
from pcclient import Client, pattern  # noqa: E402
from test_engine import ENGINE, Engine, child_env, eal_args  # noqa: E402

REQUEST_TIMEOUT = 2.0            # request_timeout of every engine here, seconds
GET_BOUND = 3 * REQUEST_TIMEOUT  # a GET that takes longer than this hung
VISIBLE = 30.0                   # deadline for a SET to become visible through another engine
CLIENT_TIMEOUT_MS = 20000        # the client's own deadline: far above the engine's

# Every engine here, unless a test says otherwise (test_cluster.py's settings() underneath).
REMOTE_DEFAULTS = {
    "global_segment_size": "256mb",
    "request_timeout": REQUEST_TIMEOUT,
    "heartbeat_interval": 0.5,
    "member_ttl": 3.0,
    "protocol": "tcp",
    "idle_policy": "adaptive",
}

# scripts/softroce-test.sh: the same cases over rdma (see the module docstring).
PROTOCOL = os.environ.get("PEERCACHE_TEST_PROTOCOL", "tcp")
RDMA_HOSTS = [h for h in os.environ.get("PEERCACHE_TEST_HOSTS", "").split(",") if h]
RDMA_DEVICES = [d for d in os.environ.get("PEERCACHE_TEST_RDMA_DEVICES", "").split(",") if d]
RDMA_GID_INDEX = os.environ.get("PEERCACHE_TEST_GID_INDEX", "1")
if PROTOCOL != "tcp":
    if PROTOCOL != "rdma" or not RDMA_HOSTS or len(RDMA_DEVICES) != len(RDMA_HOSTS):
        raise RuntimeError("PEERCACHE_TEST_PROTOCOL=rdma needs PEERCACHE_TEST_HOSTS and as many "
                           "PEERCACHE_TEST_RDMA_DEVICES")

# The data plane's wire (verbs/data_proto.h) and the page header (mempool/page.h).
DATA_REQ = struct.Struct("<4sHHQQQII")   # magic, version, flags, id, remote_off, generation,
                                         # len, reserved
DATA_REP = struct.Struct("<4sHHQiI")     # magic, version, flags, id, status, len
PAGE_HDR = struct.Struct("<4sHH16sQII20sI")
PAGE_HDR_SIZE = 64
PAYLOAD_MAX = 64 << 20


def first_diff(got, want):
    """A short description of how two byte strings differ (never the bytes themselves)."""
    if got == want:
        return None
    if got is None:
        return "no bytes"
    if len(got) != len(want):
        return "length %d, want %d" % (len(got), len(want))
    for off in range(0, len(want), 4096):
        if got[off:off + 4096] != want[off:off + 4096]:
            for i in range(off, min(off + 4096, len(want))):
                if got[i] != want[i]:
                    return "byte %d is 0x%02x, want 0x%02x (%d bytes)" % (i, got[i], want[i],
                                                                         len(want))
    return "differs"


def key_digest(ns, key):
    """BLAKE2b-128 over ns '\\0' key: the page header's digest (mempool/page.h)."""
    return hashlib.blake2b(ns.encode() + b"\0" + key.encode(), digest_size=16).digest()


def data_req(rid, off, gen, length, magic=b"PCDQ", version=1, flags=0, reserved=0):
    return DATA_REQ.pack(magic, version, flags, rid, off, gen, length, reserved)


class DataConn:
    """A raw client of an engine's data port: the open-mode handshake, then READs."""

    def __init__(self, host, port, timeout=10.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tc.open_handshake(self.s)

    def close(self):
        self.s.close()

    def send(self, raw):
        self.s.sendall(raw)

    def reply(self):
        """(id, status, page bytes or None) of the next reply."""
        magic, version, flags, rid, status, length = DATA_REP.unpack(
            tc.recv_exact(self.s, DATA_REP.size))
        if (magic, version, flags) != (b"PCDR", 1, 0):
            raise AssertionError("bad reply header %r" % ((magic, version, flags),))
        if status != 0:
            if length != 0:
                raise AssertionError("status %d with len %d" % (status, length))
            return rid, status, None
        return rid, status, tc.recv_exact(self.s, length)

    def read(self, rid, off, gen, length):
        self.send(data_req(rid, off, gen, length))
        got = self.reply()
        if got[0] != rid:
            raise AssertionError("reply id %d for request %d" % (got[0], rid))
        return got[1], got[2]


class RemoteTest(tc.ClusterTest):
    """test_cluster.py's engines with the remote defaults; helpers to store, wait and read."""

    def host(self, i):
        return RDMA_HOSTS[i] if PROTOCOL == "rdma" else tc.HOSTS[i]

    def settings(self, i, **over):
        merged = dict(REMOTE_DEFAULTS)
        if PROTOCOL == "rdma":
            if i >= len(RDMA_HOSTS):
                self.skipTest("over rdma: engine %d has no RDMA device (PEERCACHE_TEST_HOSTS)"
                              % i)
            h = RDMA_HOSTS[i]
            merged.update(protocol="rdma", device_name=RDMA_DEVICES[i],
                          gid_index=RDMA_GID_INDEX, meta_bind_host=h, control_bind_host=h,
                          rdma_bind_host=h, local_hostname=h, metrics_bind_host=h,
                          discovery_addr="%s:%d" % (RDMA_HOSTS[0], self.port))
        merged.update(over)
        return super().settings(i, **merged)

    def start(self, i, wait=True, lcores="0", **over):
        s = self.settings(i, **over)
        args = []
        for k, v in s.items():
            args += ["--set", "%s=%s" % (k, v)]
        e = Engine(args, lcores=lcores)
        node = tc.Node("n%d" % (i + 1), self.host(i), s["engine_socket"], e, s["node_id"])
        self.nodes.append(node)
        if wait:
            self.assertTrue(e.wait_ready(), "engine %s never ready:\n%s" % (node.name,
                                                                           e.output()))
            self.check_transport(node)
        return node

    def check_transport(self, node):
        """Over rdma, an engine that fell back to tcp would make the run meaningless."""
        if PROTOCOL == "rdma":
            self.assertIn("reading over rdma", node.output(),
                          "engine %s does not read over rdma:\n%s" % (node.name, node.output()))

    def start_cluster(self, n, lcores="0", **over):
        nodes = [self.start(i, wait=False, lcores=lcores, **over) for i in range(n)]
        for node in nodes:
            self.assertTrue(node.engine.wait_ready(),
                            "engine %s never ready:\n%s" % (node.name, node.output()))
            self.check_transport(node)
        self.wait_members(nodes, [x.node_id for x in nodes])
        return nodes

    def client(self, node, ns):
        c = Client(node.sock, ns=ns, timeout_ms=CLIENT_TIMEOUT_MS)
        self.clients.append(c)
        return c

    def store(self, node, ns, pages, batch=64):
        """SET {key: bytes} through node, in batches; every key newly stored."""
        c = self.client(node, ns)
        keys = list(pages)
        for i in range(0, len(keys), batch):
            ks = keys[i:i + batch]
            rc, res = c.set(ks, [pages[k] for k in ks])
            self.assertEqual((rc, set(res)), (len(ks), {0}),
                             "SET through %s: rc %d, results %s" % (node.name, rc, res[:8]))
        return c

    def wait_visible(self, node, client, keys, ns, timeout=VISIBLE):
        """Poll EXISTS (client: one of node's, in namespace ns) until it counts every key."""
        last = {}

        def visible():
            for i in range(0, len(keys), 128):
                ks = keys[i:i + 128]
                rc, present = client.exists(ks)
                if rc != len(ks):
                    last["rc"], last["first"], last["present"] = rc, i, sum(present)
                    return False
            return True

        if not tc.until(visible, timeout, step=0.1):
            try:
                where = node.lookup(keys[:4], ns)
                where = {k: (r["status"], [(x["node_id"], x["offset"], x["generation"])
                                           for x in r.get("locations", [])])
                         for k, r in where.items()}
            except Exception as e:  # noqa: BLE001 - only diagnostics
                where = repr(e)
            self.fail("EXISTS through %s never counted the %d keys within %g s: batch at %d "
                      "answered %s (%s of its keys present); the directory through %s says %s"
                      % (node.name, len(keys), timeout, last.get("first"), last.get("rc"),
                         last.get("present"), node.name, where))

    def check_get(self, client, pages, keys=None, segments=1, what=""):
        """GET keys (default: all of pages) in one call; every one a hit with its bytes."""
        keys = list(pages) if keys is None else keys
        sizes = []
        for k in keys:
            n = len(pages[k])
            if segments == 1:
                sizes.append(n)
            else:
                cut = n // segments
                sizes.append([cut] * (segments - 1) + [n - cut * (segments - 1)])
        t0 = time.monotonic()
        rc, res, got = client.get(keys, sizes)
        took = time.monotonic() - t0
        bad = [(k, r) for k, r in zip(keys, res) if r != 0]
        self.assertEqual(bad[:8], [], "%sGET of %d keys: %d not hits (rc %d); first ones" % (
            what + ": " if what else "", len(keys), len(bad), rc))
        self.assertEqual(rc, len(keys), what)
        wrong = [(k, first_diff(g, pages[k])) for k, g in zip(keys, got) if g != pages[k]]
        self.assertEqual(wrong[:8], [], "%s%d of %d pages differ; first ones" % (
            what + ": " if what else "", len(wrong), len(keys)))
        self.assertLess(took, GET_BOUND, "%sa GET took %.1f s" % (what + ": " if what else "",
                                                                 took))

    def data_addr(self, node, of=None):
        """(host, port) of the data port of member `of` (default: node itself), as node lists it."""
        want = (of or node).node_id
        for m in node.members()["members"]:
            if m["node_id"] == want:
                host, port = m["data"].rsplit(":", 1)
                return host, int(port), m
        self.fail("%s does not list %s" % (node.name, want))

    def counters(self, node, section):
        """A section of node's `peercache-ctl stats` ("remote": fetch, "transport": data plane)."""
        st = node.stats()
        self.assertIsInstance(st.get(section), dict, "%s: stats has no %r section: %s" % (
            node.name, section, sorted(st)))
        return st[section]

    def zc_settled(self, node):
        """Every zero-copy send node's data port made has been reported done."""
        xport = self.counters(node, "transport")
        return xport["serve_zc_done"] == xport["serve_zc_sends"]

    def location(self, via, ns, key):
        res = self.wait_found(via, [key], ns)[key]
        self.assertEqual(res["status"], "found", res)
        return res["locations"][0]


# ---------------------------------------------------------------- remote GET


class RemoteGet(RemoteTest):
    def test_page_sizes_from_4k_to_8m(self):
        # Both engines with a worker lcore: the GET runs on the worker, its directory lookup
        # goes through the control lcore and back.
        a, b = self.start_cluster(2, lcores="0-1")
        ns = "sizes"
        sizes = [4096, 64 << 10, 1 << 20, 8 << 20]
        pages = {}
        for s in sizes:
            for j in range(2):
                pages["sz-%d-%d" % (s, j)] = bytes(pattern(len(pages) + 1, s))
        keys = list(pages)
        self.store(a, ns, pages, batch=4)
        cb = self.client(b, ns)
        self.wait_visible(b, cb, keys, ns)
        # Each size alone, then all of them in one batch given as three segments each.
        for k in keys:
            self.check_get(cb, pages, [k], what="%s alone" % k)
        self.check_get(cb, pages, keys, segments=3, what="one batch, three segments a page")
        # And again: a second read of the same pages is just as right.
        self.check_get(cb, pages, list(reversed(keys)), what="again, reversed")
        # EXISTS across nodes counts the leading keys present anywhere.
        rc, present = cb.exists(keys[:4] + ["never-stored"] + keys[4:])
        self.assertEqual(rc, 4, present)
        self.assertEqual(present, [1, 1, 1, 1, 0, 1, 1, 1, 1])
        # A key stored nowhere is a miss; a page of the wrong size is refused, not truncated.
        rc, res, _ = cb.get(["never-stored"], [4096])
        self.assertEqual((rc, res), (0, [-errno.ENOENT]))
        rc, res, _ = cb.get([keys[0]], [8192])
        self.assertEqual((rc, res), (0, [-errno.EMSGSIZE]))
        # B read them all remotely, every page checked good; A served them.
        remote = self.counters(b, "remote")
        self.assertGreaterEqual(remote["hits"], 3 * len(keys), remote)
        self.assertEqual((remote["bad_pages"], remote["stale"], remote["timeouts"]), (0, 0, 0),
                         remote)
        self.assertGreaterEqual(self.counters(a, "transport")["serve_requests"], 3 * len(keys))
        # tcp_zerocopy (the default): A sent its large replies with MSG_ZEROCOPY, each one
        # held until the kernel reported it done; over loopback the kernel copies them anyway
        # and says so, and those connections went back to plain sends.
        self.assertTrue(tc.until(lambda: self.zc_settled(a), 10),
                        "zero-copy sends never reported done: %s" % self.counters(a, "transport"))
        xport = self.counters(a, "transport")
        self.assertGreaterEqual(xport["serve_zc_sends"], 1, xport)
        self.assertGreaterEqual(xport["serve_zc_copied"], 1, xport)
        self.assertEqual(xport["serve_zc_nobufs"], 0, xport)
        self.assertEqual(a.stats()["store"]["pinned"], 0)
        # The client's own stats count them as hits, read from another node.
        st = cb.stats()
        self.assertGreaterEqual(st["remote_hits"], 3 * len(keys), st)
        self.assertGreaterEqual(st["get_hits"], st["remote_hits"], st)
        self.assertGreaterEqual(st["remote_bytes"], 3 * sum(len(p) for p in pages.values()), st)
        self.assertEqual(st["pages"], 0, st)
        # The reader keeps no copy: the pages are still A's only (B's store holds none).
        self.assertEqual(b.stats()["store"]["pages"], 0)
        self.assertEqual(a.stats()["store"]["pages"], len(keys))
        # Another namespace does not see them.
        other = self.client(b, "other-ns")
        rc, _ = other.exists(keys[:1])
        self.assertEqual(rc, 0)

    def test_batch_of_128_keys_over_three_owners(self):
        nodes = self.start_cluster(4)
        owners, reader = nodes[:3], nodes[3]
        ns = "spread"
        size = 32 << 10
        pages = {"b%03d" % i: bytes(pattern(5000 + i, size)) for i in range(128)}
        keys = list(pages)  # key i is stored on owner i % 3: a batch alternates owners
        for j, owner in enumerate(owners):
            self.store(owner, ns, {k: pages[k] for i, k in enumerate(keys) if i % 3 == j})
        for via in (reader, owners[0]):
            c = self.client(via, ns)
            self.wait_visible(via, c, keys, ns)
            self.check_get(c, pages, keys, what="128 keys through %s" % via.name)
            self.check_get(c, pages, list(reversed(keys)),
                           what="128 keys through %s, reversed" % via.name)
        # Every owner kept its own third.
        for j, owner in enumerate(owners):
            self.assertEqual(owner.stats()["store"]["pages"], len(range(j, 128, 3)), owner.name)

    def test_owner_killed_mid_burst(self):
        reader, live, victim = self.start_cluster(3)  # the victim is not the discovery head
        ns = "kill"
        size = 64 << 10
        dead_pages = {"dead-%03d" % i: bytes(pattern(i, size)) for i in range(64)}
        live_pages = {"live-%03d" % i: bytes(pattern(1000 + i, size)) for i in range(64)}
        self.store(victim, ns, dead_pages)
        self.store(live, ns, live_pages)
        c = self.client(reader, ns)
        self.wait_visible(reader, c, list(dead_pages) + list(live_pages), ns)
        self.check_get(c, dead_pages, what="the victim's pages before the kill")

        dead_keys = list(dead_pages)
        calls = []  # (started, ended, rc, results, wrong bytes)
        stop = threading.Event()
        errors = []

        def burst():
            cl = Client(reader.sock, ns=ns, timeout_ms=CLIENT_TIMEOUT_MS)
            try:
                i = 0
                while not stop.is_set():
                    ks = dead_keys[(i % 2) * 32:(i % 2) * 32 + 32]
                    t0 = time.monotonic()
                    rc, res, got = cl.get(ks, [size] * len(ks))
                    t1 = time.monotonic()
                    wrong = [k for k, r, g in zip(ks, res, got)
                             if r == 0 and g != dead_pages[k]]
                    calls.append((t0, t1, rc, res, wrong))
                    i += 1
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(repr(e))
            finally:
                cl.close()

        t = threading.Thread(target=burst, daemon=True)
        t.start()
        try:
            self.assertTrue(tc.until(lambda: len(calls) >= 3 or not t.is_alive(), 30),
                            "the burst made no progress before the kill")
            victim.engine.kill()  # SIGKILL, and reaped
            t_kill = time.monotonic()
            # Let it run until five GETs started after the kill have returned (or a bound).
            tc.until(lambda: sum(1 for x in calls if x[0] > t_kill) >= 5 or not t.is_alive(),
                     10 * GET_BOUND)
        finally:
            stop.set()
            t.join(2 * GET_BOUND + 10)
        self.assertFalse(t.is_alive(), "a GET never returned (hung past %g s)" % GET_BOUND)
        self.assertEqual(errors, [])
        self.assertTrue(reader.alive() and live.alive())
        before = [x for x in calls if x[1] < t_kill]
        after = [x for x in calls if x[0] > t_kill]
        self.assertTrue(any(x[2] == 32 for x in before),
                        "no GET before the kill was all hits: %s" % [x[2] for x in before])
        self.assertGreaterEqual(len(after), 5, "only %d GETs after the kill" % len(after))
        slow = [round(x[1] - x[0], 2) for x in calls if x[1] - x[0] > GET_BOUND]
        self.assertEqual(slow, [], "GETs that took longer than %g s" % GET_BOUND)
        self.assertEqual([x[2] for x in calls if x[2] < 0], [],
                         "GETs that failed as a whole (client-side error)")
        self.assertEqual([w for x in calls for w in x[4]], [],
                         "hits with the wrong bytes")
        # Every GET that started after the owner was dead: every key a miss.
        not_miss = [(round(x[0] - t_kill, 2), sorted(set(x[3]))) for x in after
                    if x[3] != [-errno.ENOENT] * len(x[3])]
        self.assertEqual(not_miss, [], "GETs after the kill (s after it, results) that were "
                                       "not all misses")
        # A fresh GET of its keys still misses, within the bound; the live owner's pages read.
        t0 = time.monotonic()
        rc, res, _ = c.get(dead_keys, [size] * len(dead_keys))
        self.assertLess(time.monotonic() - t0, GET_BOUND)
        self.assertEqual((rc, set(res)), (0, {-errno.ENOENT}))
        self.check_get(c, live_pages, what="the live owner's pages after the kill")
        mixed = dead_keys[:16] + list(live_pages)[:16]
        rc, res, got = c.get(mixed, [size] * len(mixed))
        self.assertEqual(res, [-errno.ENOENT] * 16 + [0] * 16)
        self.assertEqual(rc, 16)
        self.assertTrue(got[16:] == [live_pages[k] for k in mixed[16:]])
        # The dead owner leaves the membership; its pages stay misses after that.
        self.wait_members([reader, live], [reader.node_id, live.node_id])
        rc, res, _ = c.get(dead_keys[:8], [size] * 8)
        self.assertEqual((rc, set(res)), (0, {-errno.ENOENT}))
        self.check_get(c, live_pages, what="the live owner's pages after the victim left")

    def test_reused_slot_is_a_miss_never_the_new_bytes(self):
        # B caches read locations for a minute; A reuses a freed slot after 0.2 s.
        a, b = self.start_cluster(2, page_quarantine=0.2, directory_read_cache_ttl=60)
        ns = "reuse"
        size = 64 << 10
        old_key = "old-page"
        old_bytes = bytes(pattern(1, size))
        ca = self.store(a, ns, {old_key: old_bytes})
        cb = self.client(b, ns)
        self.wait_visible(b, cb, [old_key], ns)
        self.check_get(cb, {old_key: old_bytes}, what="the old page, first read on B")
        old = self.location(b, ns, old_key)  # B's read cache holds it now

        rc, res = ca.delete([old_key])
        self.assertEqual((rc, res), (1, [0]))
        time.sleep(0.5)  # past the quarantine
        # Store pages of the same size on A until one lands in the old slot.
        new_pages = {}
        reused = None
        for n in range(16):
            batch = {"new-%03d" % (n * 8 + j): bytes(pattern(100 + n * 8 + j, size))
                     for j in range(8)}
            self.store(a, ns, batch)
            new_pages.update(batch)
            where = self.wait_found(a, list(batch), ns)
            for k in batch:
                loc = where[k]["locations"][0]
                if loc["offset"] == old["offset"]:
                    reused = (k, loc)
            if reused:
                break
            time.sleep(0.3)
        self.assertIsNotNone(reused, "A never reused the slot at offset %d for %d new pages"
                             % (old["offset"], len(new_pages)))
        new_key, new_loc = reused
        self.assertNotEqual(new_loc["generation"], old["generation"])
        # The owner refuses the old location (another page is there now).
        host, port, _ = self.data_addr(a)
        conn = DataConn(host, port)
        try:
            st, _ = conn.read(1, old["offset"], old["generation"], PAGE_HDR_SIZE + size)
            self.assertEqual(st, -errno.ESTALE)
        finally:
            conn.close()
        # The precondition: B's read cache still holds the old location.
        cached = b.lookup([old_key], ns)[old_key]
        self.assertEqual((cached["status"], cached.get("cached")), ("found", True),
                         "B no longer caches the old location: %s" % cached)
        self.assertEqual((cached["locations"][0]["offset"], cached["locations"][0]["generation"]),
                         (old["offset"], old["generation"]))
        # Reading the old key on B: a miss, never the new page's bytes (nor the old ones).
        new_bytes = new_pages[new_key]
        stale0 = self.counters(b, "remote")["stale"]
        for attempt in range(3):
            t0 = time.monotonic()
            rc, res, got = cb.get([old_key], [size])
            self.assertLess(time.monotonic() - t0, GET_BOUND)
            self.assertFalse(got[0] == new_bytes, "attempt %d: B returned the new page's bytes "
                                                  "for the deleted key" % attempt)
            self.assertEqual((rc, res), (0, [-errno.ENOENT]), "attempt %d" % attempt)
        # B did use the old location and found it stale (owner's -ESTALE or the header check),
        # rather than missing it some other way.
        remote = self.counters(b, "remote")
        self.assertGreater(remote["stale"], stale0, "B never tried the stale location it had "
                                                    "cached: %s" % remote)
        # The new page itself reads right through B.
        self.wait_visible(b, cb, [new_key], ns)
        self.check_get(cb, {new_key: new_bytes}, what="the page in the reused slot")
        self.assertTrue(a.alive() and b.alive())

    def test_eight_readers_two_channels(self):
        a, b = self.start_cluster(2, lcores="0-1", max_channels_per_peer=2)
        ns = "eight"
        size = 256 << 10
        pages = {"r%02d" % i: bytes(pattern(7000 + i, size)) for i in range(48)}
        keys = list(pages)
        self.store(a, ns, pages)
        cb = self.client(b, ns)
        self.wait_visible(b, cb, keys, ns)
        results = {}

        def reader(r):
            out = []
            rnd = random.Random(r)
            try:
                with Client(b.sock, ns=ns, timeout_ms=CLIENT_TIMEOUT_MS) as c:
                    for rnd_i in range(3):
                        order = keys[:]
                        rnd.shuffle(order)
                        for i in range(0, len(order), 16):
                            ks = order[i:i + 16]
                            t0 = time.monotonic()
                            rc, res, got = c.get(ks, [size] * len(ks))
                            took = time.monotonic() - t0
                            if rc != len(ks) or took > GET_BOUND:
                                out.append(("round %d" % rnd_i, rc, sorted(set(res)),
                                            round(took, 2)))
                            out += [(k, r, first_diff(g, pages[k]))
                                    for k, r, g in zip(ks, res, got)
                                    if r == 0 and g != pages[k]]
            except Exception as e:  # noqa: BLE001 - reported by the test
                out.append(repr(e))
            results[r] = out

        threads = [threading.Thread(target=reader, args=(r,), daemon=True) for r in range(8)]
        for t in threads:
            t.start()
        # While they read, B never has more than max_channels_per_peer channels to A.
        channels = []
        while any(t.is_alive() for t in threads) and len(channels) < 2000:
            channels.append(self.counters(b, "transport")["channels_open"])
            time.sleep(0.02)
        for t in threads:
            t.join(120)
        self.assertEqual([t.is_alive() for t in threads], [False] * 8, "readers that hung")
        self.assertLessEqual(max(channels), 2, "channels open to A, sampled: %s" % channels)
        xport = self.counters(b, "transport")
        self.assertEqual((xport["channels_destroyed"], xport["reads_failed"]), (0, 0), xport)
        remote = self.counters(b, "remote")
        self.assertEqual((remote["misses"], remote["bad_pages"]), (0, 0), remote)
        self.assertEqual({r: v[:4] for r, v in results.items() if v}, {},
                         "readers with failed GETs or wrong bytes")
        self.assertEqual(len(results), 8)


# ---------------------------------------------------------------- the data port by hand


class DataPort(RemoteTest):
    def stored(self, n_nodes=2):
        nodes = self.start_cluster(n_nodes)
        ns = "raw"
        pages = {"raw-4k": bytes(pattern(1, 4096)), "raw-64k": bytes(pattern(2, 64 << 10))}
        self.store(nodes[0], ns, pages)
        locs = {k: self.location(nodes[0], ns, k) for k in pages}
        return nodes, ns, pages, locs

    def test_out_of_range_reads_are_refused(self):
        (a, b), ns, pages, locs = self.stored()
        host, port, member = self.data_addr(b, of=a)  # as a peer sees it advertised
        self.assertEqual(host, a.host)
        cap = member["pool_capacity"]
        small, big = locs["raw-4k"], locs["raw-64k"]
        conn = DataConn(host, port)
        try:
            # A good READ: the page header and payload, as they are in A's segment.
            st, page = conn.read(1, big["offset"], big["generation"], PAGE_HDR_SIZE + 65536)
            self.assertEqual(st, 0)
            magic, ver, flags, digest, gen, plen, _, reserved, _ = PAGE_HDR.unpack(
                page[:PAGE_HDR_SIZE])
            self.assertEqual((magic, ver, digest, gen, plen, reserved),
                             (b"PCPG", 1, key_digest(ns, "raw-64k"), big["generation"], 65536,
                              bytes(20)))
            self.assertTrue(page[PAGE_HDR_SIZE:] == pages["raw-64k"])

            bad = [
                # (what, offset, generation, len, status)
                ("offset at the segment's end", cap, big["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.EINVAL),
                ("offset far past the segment", 1 << 50, big["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.EINVAL),
                ("offset 2^64-64", (1 << 64) - 64, big["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.EINVAL),
                ("offset inside the page", big["offset"] + 64, big["generation"],
                 PAGE_HDR_SIZE + 65536 - 64, -errno.EINVAL),
                ("offset one past the page's start", big["offset"] + 1, big["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.EINVAL),
                ("len one over the page", big["offset"], big["generation"],
                 PAGE_HDR_SIZE + 65536 + 1, -errno.EINVAL),
                ("len of the next slot's page too", big["offset"], big["generation"],
                 2 * (PAGE_HDR_SIZE + 65536), -errno.EINVAL),
                ("len under the page", big["offset"], big["generation"], PAGE_HDR_SIZE + 4096,
                 -errno.EINVAL),
                ("a 4 KiB page read as 64 KiB", small["offset"], small["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.EINVAL),
                ("len of the largest page", small["offset"], small["generation"],
                 PAGE_HDR_SIZE + PAYLOAD_MAX, -errno.EINVAL),
                ("generation + 1", big["offset"], big["generation"] + 1,
                 PAGE_HDR_SIZE + 65536, -errno.ESTALE),
                ("generation - 1", big["offset"], big["generation"] - 1,
                 PAGE_HDR_SIZE + 65536, -errno.ESTALE),
                ("generation 2^64-1", big["offset"], (1 << 64) - 1,
                 PAGE_HDR_SIZE + 65536, -errno.ESTALE),
                ("the other page's generation", big["offset"], small["generation"],
                 PAGE_HDR_SIZE + 65536, -errno.ESTALE),
            ]
            # Sent back to back (pipelined): answered in order, each alone, none with bytes.
            conn.send(b"".join(data_req(100 + i, off, gen, ln)
                               for i, (_, off, gen, ln, _) in enumerate(bad)))
            got = []
            for i, (what, _, _, _, want) in enumerate(bad):
                rid, st, body = conn.reply()
                got.append((what, rid - 100, st, body is None))
            self.assertEqual(got, [(w, i, s, True) for i, (w, _, _, _, s) in enumerate(bad)])
            # The connection still serves good READs after all that.
            st, page = conn.read(2, small["offset"], small["generation"], PAGE_HDR_SIZE + 4096)
            self.assertEqual(st, 0)
            self.assertTrue(page[PAGE_HDR_SIZE:] == pages["raw-4k"])
        finally:
            conn.close()

        # Requests the codec refuses outright close the connection (and nothing else).
        broken = [
            ("len over the largest page", data_req(1, big["offset"], big["generation"],
                                                   PAGE_HDR_SIZE + PAYLOAD_MAX + 1)),
            ("len 4 GiB - 1", data_req(1, big["offset"], big["generation"], 0xFFFFFFFF)),
            ("len under a header", data_req(1, big["offset"], big["generation"], 63)),
            ("len 0", data_req(1, big["offset"], big["generation"], 0)),
            ("version 2", data_req(1, big["offset"], big["generation"], PAGE_HDR_SIZE + 65536,
                                   version=2)),
            ("flags set", data_req(1, big["offset"], big["generation"], PAGE_HDR_SIZE + 65536,
                                   flags=1)),
            ("reserved set", data_req(1, big["offset"], big["generation"],
                                      PAGE_HDR_SIZE + 65536, reserved=7)),
            ("a reply's magic", data_req(1, big["offset"], big["generation"],
                                         PAGE_HDR_SIZE + 65536, magic=b"PCDR")),
        ]
        for what, raw in broken:
            with self.subTest(request=what):
                conn = DataConn(host, port)
                try:
                    conn.send(raw)
                    self.assertTrue(tc.closed_within(conn.s, REQUEST_TIMEOUT + 10),
                                    "%s: the connection stayed open" % what)
                finally:
                    conn.close()
        # A counted them, and is fine: its data port serves, its client reads locally, and B
        # reads remotely.
        self.assertTrue(a.alive())
        xport = self.counters(a, "transport")
        self.assertGreaterEqual(xport["serve_refused"], len(bad) + len(broken), xport)
        self.assertGreaterEqual(xport["serve_malformed"], len(broken), xport)
        conn = DataConn(host, port)
        try:
            st, page = conn.read(3, big["offset"], big["generation"], PAGE_HDR_SIZE + 65536)
            self.assertEqual(st, 0)
        finally:
            conn.close()
        self.check_get(self.client(a, ns), pages, what="local GET on A afterwards")
        cb = self.client(b, ns)
        self.wait_visible(b, cb, list(pages), ns)
        self.check_get(cb, pages, what="remote GET through B afterwards")

    def test_garbage_is_closed_and_gets_still_work(self):
        (a, b), ns, pages, locs = self.stored()
        host, port, _ = self.data_addr(b, of=a)
        big = locs["raw-64k"]

        def connect():
            s = socket.create_connection((host, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s

        rnd = random.Random(1234)
        cases = []
        for i in range(10):  # garbage instead of the handshake's RESPONSE
            cases.append(("http before the handshake", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                          + rnd.randbytes(200), False))
            cases.append(("random bytes before the handshake", rnd.randbytes(1 + 97 * i),
                          False))
            cases.append(("random bytes after the handshake", rnd.randbytes(40 + 61 * i),
                          True))
        # A RESPONSE of the wrong type (a CHALLENGE sent back), and one truncated then garbage.
        cases.append(("a CHALLENGE as the RESPONSE", b"PCA1" + bytes([1, 0, 1, 0])
                      + bytes(64), False))
        cases.append(("a request header then garbage", data_req(9, big["offset"],
                                                                big["generation"],
                                                                PAGE_HDR_SIZE + 65536)[:20]
                      + b"\xff" * 100, True))
        for what, raw, handshake in cases:
            with connect() as s:
                if handshake:
                    tc.open_handshake(s)
                else:
                    ch = tc.recv_exact(s, 40)
                    self.assertEqual(ch[:4], b"PCA1")
                s.sendall(raw)
                self.assertTrue(tc.closed_within(s, REQUEST_TIMEOUT + 10),
                                "%s (%d bytes): the connection stayed open" % (what, len(raw)))
        # Connections that say nothing at all are closed by the handshake deadline.
        silent = [connect() for _ in range(4)]
        try:
            for s in silent:
                self.assertTrue(tc.closed_within(s, 3 * REQUEST_TIMEOUT + 10),
                                "a silent connection stayed open")
        finally:
            for s in silent:
                s.close()
        # Connections dropped at once, mid-handshake.
        for _ in range(20):
            connect().close()
        self.assertTrue(a.alive(), "A died:\n" + a.output()[-3000:])
        xport = self.counters(a, "transport")
        malformed = sum(1 for _, _, hs in cases if hs)
        self.assertGreaterEqual(xport["serve_malformed"], malformed, xport)
        # None of those connections is kept (B has not read anything from A yet).
        self.assertTrue(tc.until(lambda: self.counters(a, "transport")["serve_conns_open"] == 0,
                                 3 * REQUEST_TIMEOUT + 10),
                        "A still holds connections: %s" % self.counters(a, "transport"))
        conn = DataConn(host, port)
        try:
            st, page = conn.read(1, big["offset"], big["generation"], PAGE_HDR_SIZE + 65536)
            self.assertEqual(st, 0)
            self.assertTrue(page[PAGE_HDR_SIZE:] == pages["raw-64k"])
        finally:
            conn.close()
        self.check_get(self.client(a, ns), pages, what="local GET on A after the garbage")
        cb = self.client(b, ns)
        self.wait_visible(b, cb, list(pages), ns)
        self.check_get(cb, pages, what="remote GET through B after the garbage")


# ---------------------------------------------------------------- network namespaces


def netns_usable():
    if os.geteuid() != 0:
        return "needs root (network namespaces and veth)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = "pcrt_probe_%d" % os.getpid()
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "ip netns add fails here: %s" % r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Namespaces(RemoteTest):
    def ip(self, *args):
        r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "ip %s: %s" % (" ".join(args), r.stderr.strip()))

    def start_in(self, netns, i, host, **over):
        s = self.settings(i, meta_bind_host=host, control_bind_host=host, rdma_bind_host=host,
                          local_hostname=host, metrics_bind_host=host, **over)
        args = []
        for k, v in s.items():
            args += ["--set", "%s=%s" % (k, v)]
        e = Engine.__new__(Engine)
        e.proc = subprocess.Popen(["ip", "netns", "exec", netns, ENGINE] + eal_args("0")
                                  + ["--"] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=child_env())
        e.lines = []
        e.ready = threading.Event()
        e.reader = threading.Thread(target=e._read, daemon=True)
        e.reader.start()
        node = tc.Node("n%d" % (i + 1), host, s["engine_socket"], e, s["node_id"])
        self.nodes.append(node)
        return node

    def test_remote_get_between_two_namespaces(self):
        why = netns_usable()
        if why:
            self.skipTest("network namespaces: " + why)
        tag = "%04x" % (os.getpid() & 0xFFFF)
        ns_a, ns_b = "pcrt_a_" + tag, "pcrt_b_" + tag
        veth_a, veth_b = "pcva" + tag, "pcvb" + tag
        host_a, host_b = "10.231.%d.1" % (os.getpid() % 250), "10.231.%d.2" % (os.getpid() % 250)
        for netns in (ns_a, ns_b):
            self.ip("netns", "add", netns)
            # Runs after tearDown has stopped the engines inside.
            self.addCleanup(subprocess.run, ["ip", "netns", "del", netns], capture_output=True)
        self.ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        self.addCleanup(subprocess.run, ["ip", "link", "del", veth_a], capture_output=True)
        for netns, dev, host in ((ns_a, veth_a, host_a), (ns_b, veth_b, host_b)):
            self.ip("link", "set", dev, "netns", netns)
            self.ip("-n", netns, "addr", "add", host + "/24", "dev", dev)
            self.ip("-n", netns, "link", "set", dev, "up")
            self.ip("-n", netns, "link", "set", "lo", "up")

        disc = "%s:%d" % (host_a, self.port)
        a = self.start_in(ns_a, 0, host_a, discovery_addr=disc)
        b = self.start_in(ns_b, 1, host_b, discovery_addr=disc)
        for n in (a, b):
            self.assertTrue(n.engine.wait_ready(), "engine %s never ready:\n%s" % (
                n.name, n.output()))
        self.wait_members([a, b], [a.node_id, b.node_id])
        host, _, _ = self.data_addr(b, of=a)
        self.assertEqual(host, host_a, "B reaches A's data port on another address")
        ns = "netns"
        pages = {"nn-4k": bytes(pattern(1, 4096)), "nn-1m": bytes(pattern(2, 1 << 20))}
        self.store(a, ns, pages)
        cb = self.client(b, ns)
        self.wait_visible(b, cb, list(pages), ns)
        self.check_get(cb, pages, what="remote GET from %s to %s over a veth pair"
                       % (ns_b, ns_a))
        # The 1 MiB page went zero-copy over the veth pair, and its pin came back.
        self.assertTrue(tc.until(lambda: self.zc_settled(a), 10),
                        "zero-copy sends never reported done: %s" % self.counters(a, "transport"))
        self.assertGreaterEqual(self.counters(a, "transport")["serve_zc_sends"], 1)
        self.assertEqual(a.stats()["store"]["pinned"], 0)


if __name__ == "__main__":
    unittest.main()
