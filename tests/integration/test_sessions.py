"""Client sessions against a real engine: pages round-trip through libpeercache,
and clients that die, lie or scribble cost the engine nothing.

Standard library only; libpeercache is driven through ctypes (pcclient.py).
Every engine has its own socket and EAL prefix and uses the adaptive idle policy.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))

import pcclient  # noqa: E402
from pcclient import Client, pattern, DEDUP  # noqa: E402
from test_engine import Engine, child_env, BUILD  # noqa: E402
from test_cluster import CTL  # noqa: E402

HOSTILE = os.path.join(BUILD, "tests", "integration", "hostile_client")
KIB = 1024
MIB = 1024 * 1024

# A child process that connects, then stores pages (or reads them) and is
# killed by a libpeercache failpoint in the middle of the protocol.
CHILD = r"""
import sys
sys.path.insert(0, %(dir)r)
from pcclient import Client, pattern
c = Client(%(sock)r, ns="victim")
if %(mode)r == "set":
    c.set(["doomed-%%d" %% i for i in range(8)], [pattern(i, 256 * 1024) for i in range(8)])
else:
    c.get(["kept-%%d" %% i for i in range(8)], [256 * 1024] * 8)
print("survived the failpoint", flush=True)
"""


def wait_for(pred, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


class SessionTest(unittest.TestCase):
    segment = "256mb"
    extra = []

    def setUp(self):
        self.assertTrue(os.path.exists(pcclient.LIB_PATH), "build libpeercache first: make")
        self.tmp = tempfile.TemporaryDirectory()
        self.sock = os.path.join(self.tmp.name, "engine.sock")
        self.engines = []
        self.clients = []
        self.engine = self.start_engine()

    def tearDown(self):
        for c in self.clients:
            c.close()
        for e in self.engines:
            e.kill()
        self.tmp.cleanup()

    def start_engine(self):
        args = ["--set", "engine_socket=" + self.sock,
                "--set", "global_segment_size=" + self.segment,
                "--set", "page_quarantine=0.2",
                "--set", "request_timeout=2"] + self.extra
        e = Engine(args)
        self.engines.append(e)
        self.assertTrue(e.wait_ready(), "engine never ready:\n" + e.output())
        return e

    def client(self, ns="test", timeout_ms=5000):
        c = Client(self.sock, ns=ns, timeout_ms=timeout_ms)
        self.clients.append(c)
        return c

    def assert_engine_healthy(self):
        self.assertIsNone(self.engine.proc.poll(), "engine died:\n" + self.engine.output())
        out = self.engine.output()
        self.assertNotIn("AddressSanitizer", out)
        self.assertNotIn("runtime error:", out)

    def stop_engine_clean(self):
        rc = self.engine.stop()
        self.assertEqual(rc, 0, self.engine.output())
        self.assertNotIn("AddressSanitizer", self.engine.output())


class RoundTrip(SessionTest):
    def test_page_sizes_4k_to_8m(self):
        c = self.client()
        sizes = [4 * KIB, 4 * KIB + 1, 60 * KIB, 64 * KIB, 100 * KIB, 1 * MIB, 3 * MIB + 17,
                 8 * MIB]
        keys = ["size-%d" % n for n in sizes]
        pages = [pattern(i, n) for i, n in enumerate(sizes)]
        rc, res = c.set(keys, pages)
        self.assertEqual(rc, len(sizes), res)
        self.assertEqual(res, [0] * len(sizes))
        rc, res, got = c.get(keys, sizes)
        self.assertEqual(rc, len(sizes), res)
        for i, n in enumerate(sizes):
            self.assertEqual(got[i], bytes(pages[i]), "page of %d bytes differs" % n)
        # A wrong size is refused, never a partial copy.
        rc, res, _ = c.get([keys[0]], [sizes[0] + 1])
        self.assertEqual(res, [-90])  # EMSGSIZE
        self.assert_engine_healthy()

    def test_scatter_segments(self):
        # SGLang layer_first MHA: 2*L segments per page, here L = 4 of 16 KiB.
        c = self.client()
        pages = [[pattern(p * 100 + s, 16 * KIB) for s in range(8)] for p in range(5)]
        keys = ["sg-%d" % p for p in range(5)]
        rc, res = c.set(keys, pages)
        self.assertEqual(rc, 5, res)
        rc, res, got = c.get(keys, [[16 * KIB] * 8] * 5)
        self.assertEqual(rc, 5, res)
        for p in range(5):
            self.assertEqual(got[p], b"".join(bytes(s) for s in pages[p]))
        # The same page read back as one flat buffer.
        rc, res, got = c.get(keys[:1], [128 * KIB])
        self.assertEqual(got[0], b"".join(bytes(s) for s in pages[0]))

    def test_duplicate_set_is_deduplicated(self):
        c = self.client()
        first = pattern(1, 64 * KIB)
        self.assertEqual(c.set(["dup"], [first]), (1, [0]))
        rc, res = c.set(["dup"], [pattern(2, 64 * KIB)])
        self.assertEqual((rc, res), (1, [DEDUP]))
        _, _, got = c.get(["dup"], [64 * KIB])
        self.assertEqual(got[0], bytes(first), "first writer must win")
        self.assertGreaterEqual(c.stats()["set_dedup"], 1)

    def test_exists_prefix_and_delete(self):
        c = self.client()
        keys = ["chain-%d" % i for i in range(10)]
        c.set(keys, [pattern(i, 8 * KIB) for i in range(10)])
        self.assertEqual(c.exists(keys)[0], 10)
        probe = keys[:4] + ["missing"] + keys[5:]
        rc, present = c.exists(probe)
        self.assertEqual(rc, 4)
        self.assertEqual(present, [1, 1, 1, 1, 0, 1, 1, 1, 1, 1])
        rc, res = c.delete(keys[2:3] + ["never-there"])
        self.assertEqual((rc, res), (1, [0, -2]))
        self.assertEqual(c.exists(keys)[0], 2)
        _, res, _ = c.get(keys[2:3], [8 * KIB])
        self.assertEqual(res, [-2])

    def test_namespaces_are_separate(self):
        a = self.client(ns="model-a")
        b = self.client(ns="model-b")
        a.set(["k"], [pattern(7, 4 * KIB)])
        self.assertEqual(b.exists(["k"])[0], 0)
        self.assertEqual(b.get(["k"], [4 * KIB])[1], [-2])
        b.set(["k"], [pattern(8, 4 * KIB)])
        self.assertEqual(a.get(["k"], [4 * KIB])[2][0], bytes(pattern(7, 4 * KIB)))
        self.assertEqual(b.get(["k"], [4 * KIB])[2][0], bytes(pattern(8, 4 * KIB)))
        self.assertEqual(a.clear(), 1)
        self.assertEqual(a.exists(["k"])[0], 0)
        self.assertEqual(b.exists(["k"])[0], 1)

    def test_batch_over_128_keys(self):
        c = self.client()
        keys = ["big-%d" % i for i in range(300)]
        rc, res = c.set(keys, [pattern(i, 4 * KIB) for i in range(300)], prefix_depth=5)
        self.assertEqual(rc, 300, res[:5])
        self.assertEqual(c.exists(keys)[0], 300)
        rc, res, got = c.get(keys, [4 * KIB] * 300)
        self.assertEqual(rc, 300)
        self.assertTrue(all(got[i] == bytes(pattern(i, 4 * KIB)) for i in range(300)))

    def test_four_threads_two_sessions(self):
        sessions = [self.client(ns="shared"), self.client(ns="shared")]
        errors = []

        def worker(t):
            c = sessions[t % 2]
            try:
                for r in range(6):
                    keys = ["t%d-r%d-%d" % (t, r, i) for i in range(16)]
                    pages = [pattern(t * 1000 + r * 16 + i, 32 * KIB) for i in range(16)]
                    rc, res = c.set(keys, pages, prefix_depth=r * 16)
                    if rc != 16:
                        errors.append("set %s" % res)
                        return
                    rc, res, got = c.get(keys, [32 * KIB] * 16)
                    if rc != 16 or any(got[i] != bytes(pages[i]) for i in range(16)):
                        errors.append("get mismatch t%d r%d %s" % (t, r, res))
                        return
                    if c.exists(keys)[0] != 16:
                        errors.append("exists")
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assert_engine_healthy()


class Eviction(SessionTest):
    segment = "32mb"

    def test_full_segment_keeps_working(self):
        c = self.client()
        n = 96  # 96 MiB of 1 MiB pages through a 32 MiB segment
        stored = []
        for batch in range(0, n, 8):
            keys = ["ev-%d" % i for i in range(batch, batch + 8)]
            pages = [pattern(i, MIB) for i in range(batch, batch + 8)]
            rc, res = c.set(keys, pages)
            self.assertTrue(all(r in (0, DEDUP, -28) for r in res), res)  # ENOSPC allowed
            stored += [k for k, r in zip(keys, res) if r == 0]
        st = c.stats()
        self.assertGreater(st["evictions"], 0, st)
        self.assertGreater(len(stored), 48, "eviction let too few SETs through: %s" % st)
        # Every key reads back as its own bytes or misses: never another page's bytes.
        hits = 0
        for i in range(n):
            rc, res, got = c.get(["ev-%d" % i], [MIB])
            if res[0] == 0:
                hits += 1
                self.assertEqual(got[0], bytes(pattern(i, MIB)), "wrong bytes for ev-%d" % i)
            else:
                self.assertEqual(res[0], -2)
        self.assertGreater(hits, 0)
        self.assertLess(hits, n)
        # Another page size reuses the same memory.
        rc, res = c.set(["small-%d" % i for i in range(512)],
                        [pattern(i, 16 * KIB) for i in range(512)])
        self.assertGreater(rc, 256, res[:8])
        self.assert_engine_healthy()


class ClientDeath(SessionTest):
    def run_child(self, mode):
        env = dict(os.environ, PEERCACHE_FAILPOINT={"set": "before_commit",
                                                    "get": "mid_get"}[mode])
        code = CHILD % {"dir": os.path.dirname(__file__), "sock": self.sock, "mode": mode}
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stdout + p.stderr)
        self.assertNotIn("survived", p.stdout)

    def test_set_never_committed_is_invisible_and_reclaimed(self):
        c = self.client(ns="victim")
        before = c.stats()
        self.run_child("set")
        keys = ["doomed-%d" % i for i in range(8)]
        self.assertEqual(c.exists(keys), (0, [0] * 8))
        st = wait_for(lambda: (lambda s: s if s["set_aborted"] >= before["set_aborted"] + 8
                               else None)(c.stats()))
        self.assertIsNotNone(st, c.stats())
        self.assertEqual(st["pages"], before["pages"])
        self.assert_engine_healthy()

    def test_kill_mid_get_releases_pins(self):
        c = self.client(ns="victim")
        keys = ["kept-%d" % i for i in range(8)]
        c.set(keys, [pattern(i, 256 * KIB) for i in range(8)])
        self.run_child("get")
        self.assertTrue(wait_for(lambda: c.stats()["pinned"] == 0), c.stats())
        # The pages are intact and can be deleted (nothing left pinned under them).
        rc, res, got = c.get(keys, [256 * KIB] * 8)
        self.assertEqual(rc, 8)
        self.assertEqual(got[3], bytes(pattern(3, 256 * KIB)))
        self.assertEqual(c.delete(keys)[0], 8)
        self.assert_engine_healthy()

    def test_kill9_holding_pins(self):
        p = subprocess.Popen([HOSTILE, self.sock, "hold-pins"], stdout=subprocess.PIPE,
                             text=True, env=child_env())
        try:
            line = ""
            while "holding" not in line:
                line = p.stdout.readline()
                self.assertNotEqual(line, "", "hostile client ended early")
            c = self.client()
            self.assertGreaterEqual(c.stats()["pinned"], 4)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
        self.assertTrue(wait_for(lambda: c.stats()["pinned"] == 0), c.stats())
        self.assertTrue(wait_for(lambda: c.stats()["sessions"] == 1), c.stats())


class EngineDeath(SessionTest):
    def test_engine_killed_then_restarted(self):
        c = self.client(timeout_ms=1500)
        c.set(["before"], [pattern(1, 4 * KIB)])
        self.engine.kill()
        t0 = time.monotonic()
        rc, res, _ = c.get(["before"], [4 * KIB])
        elapsed = time.monotonic() - t0
        self.assertIn(rc, (-107, -110, -111, -2), res)  # ENOTCONN, ETIMEDOUT, ECONNREFUSED
        self.assertLess(elapsed, 1.5 + 3.0, "a call outlived its deadline by far")
        self.assertLess(c.ping(), 0)
        self.engine = self.start_engine()
        self.assertTrue(wait_for(lambda: c.ping() == 0, timeout=10), "no reconnect")
        rc, res = c.set(["after"], [pattern(2, 4 * KIB)])
        self.assertEqual(rc, 1)
        self.assertEqual(c.get(["after"], [4 * KIB])[2][0], bytes(pattern(2, 4 * KIB)))
        self.assertGreaterEqual(c.stats()["reconnects"], 1)


class Hostile(SessionTest):
    def run_hostile(self, *args):
        p = subprocess.run([HOSTILE, self.sock] + list(args), capture_output=True, text=True,
                           timeout=120, env=child_env())
        return p

    def test_stalled_writer_keeps_its_pages(self):
        # request_timeout is 2 s here: a writer stalled for 3 s still owns its pages, no other
        # session is handed them, and its late commit publishes its own bytes.
        p = self.run_hostile("slow-writer", "3000")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_engine_healthy()

    def test_bad_hello(self):
        p = self.run_hostile("bad-hello")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_engine_healthy()
        self.assertEqual(self.client().ping(), 0)

    def test_bad_requests_fail_alone(self):
        bystander = self.client(ns="bystander")
        bystander.set(["safe"], [pattern(5, 64 * KIB)])
        p = self.run_hostile("bad-requests")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_engine_healthy()
        self.assertEqual(bystander.get(["safe"], [64 * KIB])[2][0], bytes(pattern(5, 64 * KIB)))
        self.assertGreater(bystander.stats()["bad_requests"], 0)

    def test_scribbled_region(self):
        bystander = self.client(ns="bystander")
        bystander.set(["safe"], [pattern(6, 64 * KIB)])
        for seed in (1, 2, 3):
            p = self.run_hostile("scribble", str(seed))
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assert_engine_healthy()
        self.assertEqual(bystander.get(["safe"], [64 * KIB])[2][0], bytes(pattern(6, 64 * KIB)))
        self.assertTrue(wait_for(lambda: bystander.stats()["sessions"] == 1), bystander.stats())
        self.stop_engine_clean()


class IdleWake(SessionTest):
    def control_wakeups(self):
        r = subprocess.run([CTL, "--socket", self.sock, "--json", "stats"], capture_output=True,
                           text=True, timeout=30, env=child_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        lcores = json.loads(r.stdout)["lcores"]
        return sum(lc["wakeups"] for lc in lcores if lc["role"] == "control")

    def test_a_connecting_client_wakes_the_idle_control_lcore(self):
        # Under the adaptive policy an idle control lcore sleeps (up to 1 ms at a time) on its
        # wait set; the session socket is in it, so a connecting client ends the sleep rather
        # than waiting it out. Each connect below finds the engine idle (30 ms apart).
        time.sleep(0.5)
        before = self.control_wakeups()
        for _ in range(20):
            time.sleep(0.03)
            Client(self.sock, ns="wake").close()
        woken = self.control_wakeups() - before
        # The stats call itself is one more; idle wake-ups are about one a second. A sleep
        # ended by its timeout is not counted, so without the socket in the wait set this
        # stays near 1.
        self.assertGreaterEqual(woken, 10, "control lcore woken %d times by 20 connects" % woken)


class OutOfDescriptors(SessionTest):
    def ctl_stats(self):
        r = subprocess.run([CTL, "--socket", self.sock, "--json", "stats"], capture_output=True,
                           text=True, timeout=30, env=child_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_accept_failures_pause_accepts_and_log_once(self):
        # With its descriptors used up the engine cannot accept, and the queued connections
        # keep the listen socket readable: accepts pause (one warning, not one per pass of a
        # spinning control lcore), and resume once descriptors are back.
        import resource
        import socket

        pid = self.engine.proc.pid
        top = max(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        socks = []
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (top + 3, old[1]))
            for _ in range(64):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(self.sock)  # queued: the backlog takes it, accepted or not
                socks.append(s)
            self.assertTrue(wait_for(lambda: "accept on " in self.engine.output(), timeout=10),
                            self.engine.output()[-3000:])
            time.sleep(1.0)  # ten pauses' worth
            out = self.engine.output()
            self.assertEqual(out.count("accept on "), 1, out[-3000:])
            self.assertIn("Too many open files", out)
        finally:
            for s in socks:
                s.close()
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        # Accepts resume: new clients and peercache-ctl get in, and the failures are counted.
        self.assertEqual(self.client().ping(), 0)
        self.assertGreaterEqual(self.ctl_stats()["sessions"]["accept_failed"], 1)
        self.assert_engine_healthy()


class Limits(SessionTest):
    extra = ["--set", "max_sessions=2"]

    def test_max_sessions(self):
        a = self.client()
        b = self.client()
        with self.assertRaises(pcclient.ClientError) as cm:
            self.client()
        self.assertEqual(cm.exception.rc, -71)  # EPROTO: the hello was refused
        self.assertTrue(wait_for(lambda: "max_sessions (2) reached" in self.engine.output()),
                        self.engine.output())
        # Closing one frees its place.
        a.close()
        self.assertTrue(wait_for(lambda: b.stats()["sessions"] == 1), b.stats())
        self.assertEqual(self.client().ping(), 0)

    def test_second_engine_on_a_live_socket_is_refused(self):
        e = Engine(["--set", "engine_socket=" + self.sock])
        self.engines.append(e)
        rc = e.proc.wait(60)
        self.assertEqual(rc, 1, e.output())
        self.assertTrue(wait_for(lambda: "is in use by another engine" in e.output()),
                        e.output())
        # The first engine still serves its clients.
        self.assertEqual(self.client().ping(), 0)


if __name__ == "__main__":
    unittest.main()
