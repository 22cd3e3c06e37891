"""End-to-end tests of build/peercache: real engine processes, started, checked and killed.

Standard library only. Every engine runs with --no-huge --in-memory and its own
--file-prefix, binds only to 127.0.0.1, and uses the adaptive idle policy so that
engines share a 2-core machine. Under `make ASAN=1 test` the same binary is built
with AddressSanitizer: a leak or a memory error makes the engine exit non-zero,
which these tests report as a failure.
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("PEERCACHE_BUILD", "build"))
ENGINE = os.path.join(BUILD, "peercache")
EXAMPLES = os.path.join(ROOT, "config", "examples")

# Liveness bounds, not speed checks: generous so a loaded CI machine passes.
READY_TIMEOUT = 60
STOP_TIMEOUT = 30

# Every key of the seed's extra_config reference plus the engine's own.
ALL_KEYS = [
    "backend_name", "module_path", "class_name", "interface_v1", "autostart",
    "discovery_addr",
    "mode", "write_policy", "role",
    "protocol", "device_name", "device_names", "ib_port", "gid_index", "max_channels_per_peer",
    "tcp_zerocopy",
    "global_segment_size", "vnodes", "directory_replicas", "directory_read_cache_ttl",
    "max_masters",
    "disk_enabled", "disk_path", "disk_size",
    "metrics_enabled", "metrics_port", "metrics_bind_host", "metrics_dashboard",
    "meta_bind_host", "local_hostname", "rdma_bind_host", "rdma_port",
    "control_bind_host", "control_port", "node_id", "heartbeat_interval", "member_ttl",
    "engine_socket", "idle_policy", "max_sessions", "request_timeout", "page_quarantine",
    "page_crc", "cluster_secret_file", "config_version",
]

_counter = 0


def eal_args(lcores="0-1"):
    """EAL options for a test engine: no hugepages, no files, a unique prefix."""
    global _counter
    _counter += 1
    return ["-l", lcores, "--no-huge", "--in-memory", "--no-pci", "--no-telemetry",
            "--file-prefix", "pc_it_%d_%d" % (os.getpid(), _counter)]


def child_env():
    """The environment for engine processes: under an ASan test run, Python has the ASan
    runtime preloaded with leak checks off (tests/run.sh); engines get neither."""
    env = dict(os.environ)
    if "PEERCACHE_CHILD_ASAN_OPTIONS" in env:
        env.pop("LD_PRELOAD", None)
        env["ASAN_OPTIONS"] = env.pop("PEERCACHE_CHILD_ASAN_OPTIONS")
        if not env["ASAN_OPTIONS"]:
            del env["ASAN_OPTIONS"]
    return env


def run_cli(*app_args, eal=None):
    """Run the engine to completion (for options that exit at once)."""
    cmd = [ENGINE] + (eal if eal is not None else eal_args()) + ["--"] + list(app_args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=child_env())


class Engine:
    """A running engine whose merged stdout/stderr is collected by a thread."""

    def __init__(self, app_args, lcores="0-1", eal=None):
        cmd = [ENGINE] + (eal if eal is not None else eal_args(lcores)) + ["--"] + app_args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=child_env())
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if "peercache.engine: ready:" in line:
                self.ready.set()

    def output(self):
        return "".join(self.lines)

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready.wait(0.05):
                return True
            if self.proc.poll() is not None:
                break
        return self.ready.is_set()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(10)
        self.proc.stdout.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(10)
        if not self.proc.stdout.closed:
            self.proc.stdout.close()


def loopback_overrides(tmp):
    """--set options that keep an example config on this machine and small."""
    sets = {
        "discovery_addr": "127.0.0.1:31998",
        "local_hostname": "127.0.0.1",
        "meta_bind_host": "127.0.0.1",
        "control_bind_host": "127.0.0.1",
        "rdma_bind_host": "127.0.0.1",
        "metrics_bind_host": "127.0.0.1",
        "metrics_port": "0",
        "disk_path": tmp,
        "global_segment_size": "64mb",
        "idle_policy": "adaptive",
        "engine_socket": os.path.join(tmp, "engine.sock"),
    }
    args = []
    for key, value in sets.items():
        args += ["--set", "%s=%s" % (key, value)]
    return args


class EngineLifecycle(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(ENGINE, os.X_OK), "build the engine first: make")
        self.tmp = tempfile.TemporaryDirectory()
        self.engines = []

    def tearDown(self):
        for e in self.engines:
            e.kill()
        self.tmp.cleanup()

    def start(self, app_args, **kw):
        e = Engine(app_args, **kw)
        self.engines.append(e)
        return e

    def assert_clean_cycle(self, e, sig=signal.SIGTERM):
        self.assertTrue(e.wait_ready(), "engine never reported ready:\n" + e.output())
        rc = e.stop(sig)
        out = e.output()
        self.assertEqual(rc, 0, "engine exit %d after %s:\n%s" % (rc, sig.name, out))
        self.assertIn("received: stopping", out)
        self.assertIn("peercache.engine: stopped", out)
        self.assertNotIn("ERROR: AddressSanitizer", out)
        self.assertNotIn("runtime error:", out)  # UBSan
        return out

    def test_embedded_default_start_stop(self):
        # The launch line, exactly: starts anywhere with no config.
        e = self.start([], eal=["-l", "0-1", "--no-huge", "--in-memory",
                                "--file-prefix", "pc_it_%d_emb" % os.getpid()])
        out = self.assert_clean_cycle(e)
        self.assertRegex(out, r"ready: pid \d+, control lcore 0, 1 worker lcore\(s\), "
                              r"protocol tcp, discovery 127\.0\.0\.1:31998, idle policy adaptive,"
                              r" config <embedded>")
        self.assertIn("passed to EAL as --no-shconf", out)
        # Both lcores report their counters at shutdown.
        self.assertRegex(out, r"lcore 0 \(control\): \d+ passes")
        self.assertRegex(out, r"lcore 1 \(worker\): \d+ passes")

    def test_sigint_stops_cleanly(self):
        self.assert_clean_cycle(self.start([]), sig=signal.SIGINT)

    def test_single_lcore(self):
        # -l 0 alone: the worker pollers run on the control lcore.
        out = self.assert_clean_cycle(self.start([], lcores="0"))
        self.assertIn("control lcore 0, 0 worker lcore(s)", out)
        self.assertNotIn("(worker)", out)

    def test_each_example_config(self):
        examples = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".cfg"))
        self.assertEqual(examples, ["laptop.cfg", "p2p-node.cfg", "storage-server.cfg"])
        for name in examples:
            with self.subTest(example=name):
                path = os.path.join(EXAMPLES, name)
                e = self.start(["--config", path] + loopback_overrides(self.tmp.name))
                out = self.assert_clean_cycle(e)
                self.assertIn("config " + path, out)

    def test_two_engines_share_the_machine(self):
        # Two engines on the same two cores, as in the cross-node tests to come.
        # Each needs its own client socket: a second engine on a live socket is refused.
        a = self.start(["--set", "engine_socket=" + os.path.join(self.tmp.name, "a.sock")])
        b = self.start(["--set", "engine_socket=" + os.path.join(self.tmp.name, "b.sock")])
        self.assertTrue(a.wait_ready(), a.output())
        self.assertTrue(b.wait_ready(), b.output())
        self.assertEqual(a.stop(), 0, a.output())
        self.assertEqual(b.stop(), 0, b.output())

    def test_missing_cluster_secret_warns(self):
        e = self.start([])
        out = self.assert_clean_cycle(e)
        self.assertIn("no cluster_secret", out)

    def test_cluster_secret_file_no_warning(self):
        secret = os.path.join(self.tmp.name, "secret")
        with open(secret, "w") as f:
            f.write("0123456789abcdef0123456789abcdef\n")
        e = self.start(["--set", "cluster_secret_file=" + secret])
        out = self.assert_clean_cycle(e)
        self.assertNotIn("no cluster_secret", out)
        self.assertNotIn("0123456789abcdef", out)

    def test_eal_failure_exits_1(self):
        r = run_cli(eal=["-l", "0-1", "--no-huge", "--in-memory", "--bogus-eal-option"])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("EAL initialisation failed", r.stderr)


class ConfigCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_set_protocol_udp_is_rejected(self):
        r = run_cli("--set", "protocol=udp")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("protocol", r.stderr)
        self.assertIn('"rdma"', r.stderr)
        self.assertIn('"tcp"', r.stderr)
        self.assertIn('"udp"', r.stderr)
        # Rejected before EAL: no EAL output at all.
        self.assertNotIn("EAL:", r.stdout + r.stderr)

    def test_typo_key_names_file_line_key(self):
        path = self.write("typo.cfg", 'discovery_addr = "127.0.0.1:31998";\n'
                                      'protocol = "tcp";\n'
                                      'vnodes = 160;\n'
                                      'protcol = "tcp";\n')
        r = run_cli("--config", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("%s:4: protcol:" % path, r.stderr)
        self.assertIn("unknown key", r.stderr)
        self.assertIn('"protocol"', r.stderr)  # the suggestion

    def test_errors_per_class(self):
        cases = {
            "range": ('discovery_addr = "127.0.0.1:31998";\nvnodes = 0;\n', ":2: vnodes:"),
            "type": ('discovery_addr = "127.0.0.1:31998";\ndisk_enabled = "yes";\n',
                     ":2: disk_enabled:"),
            "size": ('discovery_addr = "127.0.0.1:31998";\ndisk_size = "8 parsecs";\n',
                     ":2: disk_size:"),
            "syntax": ('discovery_addr = "127.0.0.1:31998"\nvnodes = ;\n', ":2: syntax error"),
            "missing": ("vnodes = 10;\n", "discovery_addr: required"),
            "ttl": ('discovery_addr = "127.0.0.1:31998";\nheartbeat_interval = 2.0;\n'
                    "member_ttl = 1.0;\n", ":3: member_ttl:"),
        }
        for name, (text, expected) in cases.items():
            with self.subTest(case=name):
                path = self.write(name + ".cfg", text)
                r = run_cli("--config", path, "--check-config")
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(expected, r.stderr)

    def test_missing_file(self):
        r = run_cli("--config", os.path.join(self.tmp.name, "absent.cfg"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.cfg", r.stderr)

    def test_check_config_examples(self):
        for name in ("p2p-node.cfg", "storage-server.cfg", "laptop.cfg"):
            with self.subTest(example=name):
                r = run_cli("--config", os.path.join(EXAMPLES, name), "--check-config")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("configuration ok", r.stdout)

    def test_print_config_every_key(self):
        r = run_cli("--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = dict(re.findall(r"^([a-z0-9_]+) = (.*?);", r.stdout, re.M))
        for key in ALL_KEYS:
            self.assertIn(key, printed, "--print-config lacks " + key)
        self.assertEqual(printed["protocol"], '"tcp"')
        self.assertEqual(printed["disk_enabled"], "false")
        self.assertEqual(printed["idle_policy"], '"adaptive"')
        self.assertEqual(printed["discovery_addr"], '"127.0.0.1:31998"')
        self.assertIn("cluster_secret", r.stdout)  # said to be unset, never printed

    def test_print_config_round_trip_with_overrides(self):
        r = run_cli("--set", "vnodes=77", "--set", "disk.size=3gb", "--set", "vnodes=99",
                    "--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^vnodes = 99;")  # the later --set wins
        self.assertRegex(r.stdout, r'(?m)^disk_size = "3gb";')
        path = self.write("printed.cfg", r.stdout)
        again = run_cli("--config", path, "--print-config")
        self.assertEqual(again.returncode, 0, again.stderr)

        def values(text):
            return re.findall(r"^([a-z0-9_]+ = .*?;)", text, re.M)

        self.assertEqual(values(again.stdout), values(r.stdout))

    def test_help_and_version(self):
        r = subprocess.run([ENGINE, "--help"], capture_output=True, text=True, timeout=30,
                           env=child_env())
        self.assertEqual(r.returncode, 0)
        for opt in ("--config", "--set", "--check-config", "--print-config"):
            self.assertIn(opt, r.stdout)
        r = subprocess.run([ENGINE, "--", "--version"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^peercache \d+\.\d+\.\d+")

    def test_unknown_app_option(self):
        r = run_cli("--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--frobnicate", r.stderr)


if __name__ == "__main__":
    unittest.main()
