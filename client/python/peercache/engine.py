"""Find, start and reach the node's PeerCache engine (``peercache``).

One engine serves every SGLang rank of a node. The backend connects to it at
``engine_socket``; with ``autostart`` (the default) and no engine answering
there, the first rank to get the lock file ``<engine_socket>.lock`` starts one
from the engine keys of its ``extra_config`` and the other ranks wait for it,
so several ranks autostarting at once end with exactly one engine.

The autostarted engine is detached (its own session): it keeps running for the
node's other ranks, and across SGLang restarts, until it is killed
(``kill $(cat <engine_socket>.pid)``), or until the rank that started it closes
its backend when ``autostart_stop_on_close`` is true.
"""

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time

from . import _lib

logger = logging.getLogger("peercache")

# Every key of the engine's configuration schema (`peercache -- --print-config`).
ENGINE_KEYS = (
    "discovery_addr", "mode", "write_policy", "role", "protocol", "device_name",
    "device_names", "ib_port", "gid_index", "max_channels_per_peer", "tcp_zerocopy",
    "global_segment_size", "vnodes", "directory_replicas", "directory_read_cache_ttl",
    "max_masters", "disk_enabled", "disk_path", "disk_size", "metrics_enabled", "metrics_port", "metrics_bind_host",
    "metrics_dashboard", "meta_bind_host", "local_hostname", "rdma_bind_host", "rdma_port",
    "control_bind_host", "control_port", "node_id", "heartbeat_interval", "member_ttl",
    "engine_socket", "idle_policy", "max_sessions", "request_timeout", "page_quarantine",
    "page_crc", "cluster_secret", "cluster_secret_file", "config_version")
# The engine accepts these too, but they mean nothing to it: not written.
FACTORY_KEYS = ("backend_name", "module_path", "class_name", "interface_v1", "autostart")

BOOL_KEYS = {"tcp_zerocopy", "disk_enabled", "metrics_enabled", "metrics_dashboard",
             "page_crc"}
INT_KEYS = {"ib_port", "gid_index", "max_channels_per_peer", "vnodes", "directory_replicas",
            "max_masters", "metrics_port", "rdma_port", "control_port", "max_sessions",
            "config_version"}
DECIMAL_KEYS = {"directory_read_cache_ttl", "heartbeat_interval", "member_ttl",
                "request_timeout", "page_quarantine"}
SIZE_KEYS = {"global_segment_size", "disk_size"}
LIST_KEYS = {"discovery_addr", "device_names"}

# Without a discovery_addr the autostarted engine is a single node on loopback,
# exactly the engine's embedded default (peercache with no --config).
SINGLE_NODE_BASE = {
    "discovery_addr": "127.0.0.1:31998",
    "local_hostname": "127.0.0.1",
    "meta_bind_host": "127.0.0.1",
    "control_bind_host": "127.0.0.1",
    "rdma_bind_host": "127.0.0.1",
    "metrics_bind_host": "127.0.0.1",
    "metrics_port": 0,
    "protocol": "tcp",
    "disk_enabled": False,
    "global_segment_size": "2gb",
}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def to_bool(v, default=False):
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return default


def flatten(extra):
    """{"disk": {"enabled": true}} -> {"disk_enabled": True} (the engine's grouping rule)."""
    out = {}
    for k, v in (extra or {}).items():
        if isinstance(v, dict):
            for k2, v2 in flatten(v).items():
                out["%s_%s" % (k, k2)] = v2
        else:
            out[str(k)] = v
    return out


def find_binary():
    """The engine binary: $PEERCACHE_BIN, next to the package, the checkout's build, PATH."""
    tried = []
    env = os.environ.get("PEERCACHE_BIN")
    cands = []
    if env:
        cands.append(env)
    cands.append(os.path.join(_lib.PKG_DIR, "bin", "peercache"))
    build = os.environ.get("PEERCACHE_BUILD", "build")
    cands.append(os.path.join(_lib.CHECKOUT_ROOT, build, "peercache"))
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
        tried.append(c)
    w = shutil.which("peercache")
    if w:
        return w
    tried.append("peercache on PATH")
    raise FileNotFoundError("peercache engine binary not found (set PEERCACHE_BIN); tried: "
                            + ", ".join(tried))


def _quote(s):
    out = ['"']
    for ch in str(s):
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(key, v):
    """One value in libconfig syntax, coerced to the key's type."""
    if key in BOOL_KEYS:
        return "true" if to_bool(v) else "false"
    if key in INT_KEYS:
        if isinstance(v, bool):
            return "1" if v else "0"
        return str(int(str(v).strip(), 0) if isinstance(v, str) else int(v))
    if key in DECIMAL_KEYS:
        f = float(v)
        return repr(f) if "." in repr(f) or "e" in repr(f) else repr(f) + ".0"
    if key in SIZE_KEYS:
        if isinstance(v, bool):
            raise ValueError("%s: a size, got a bool" % key)
        if isinstance(v, int):
            return str(v) + ("L" if v >= 2**31 else "")
        if isinstance(v, float) and v.is_integer():
            return str(int(v)) + ("L" if v >= 2**31 else "")
        return _quote(v)
    if key in LIST_KEYS and isinstance(v, (list, tuple)):
        return "[" + ", ".join(_quote(x) for x in v) + "]"
    return _quote(v)


def autostart_config(extra, socket_path):
    """The engine config (a dict of engine keys) an autostart writes for this extra_config."""
    flat = flatten(extra)
    cfg = {}
    if not flat.get("discovery_addr"):
        cfg.update(SINGLE_NODE_BASE)
    for k, v in flat.items():
        if k in ENGINE_KEYS and v is not None:
            cfg[k] = v
    cfg["engine_socket"] = socket_path
    cfg.setdefault("idle_policy", "adaptive")
    cfg["config_version"] = 1
    return cfg


def render_config(cfg):
    lines = ["# Written by the peercache SGLang backend (autostart). Engine keys only;",
             "# `peercache -- --config THIS --print-config` shows the rest.", ""]
    for k in ENGINE_KEYS:
        if k in cfg:
            lines.append("%s = %s;" % (k, _value(k, cfg[k])))
    return "\n".join(lines) + "\n"


def _hugepages_ok(segment_bytes):
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].startswith("Huge"):
                    info[parts[0].rstrip(":")] = int(parts[1])
        free = info.get("HugePages_Free", 0) * info.get("Hugepagesize", 0) * 1024
        if free < segment_bytes + (256 << 20):
            return False
        return os.geteuid() == 0
    except Exception:
        return False


_UNITS = {"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
          "g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}


def parse_size(v, default):
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return int(v)
        s = str(v).strip().lower()
        num = s.rstrip("abcdefghijklmnopqrstuvwxyz ").strip()
        unit = s[len(num):].strip()
        return int(float(num) * (1 << _UNITS[unit]))
    except Exception:
        return default


def _lcore_args(spec):
    if spec:
        spec = str(spec)
        return ["--lcores", spec] if "@" in spec else ["-l", spec]
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except Exception:
        cpus = list(range(os.cpu_count() or 1))
    pick = cpus[-2:] if len(cpus) >= 2 else cpus[:1]
    if max(pick) < 128:
        return ["-l", ",".join(str(c) for c in pick)]
    return ["--lcores", ",".join("%d@%d" % (i, c) for i, c in enumerate(pick))]


def try_connect(socket_path, ns, timeout_ms):
    """A Client, or None (the errno in the second value)."""
    try:
        return _lib.Client(socket_path, ns, timeout_ms), 0
    except ConnectionError as e:
        return None, (e.errno or -errno.ECONNREFUSED)


class Autostart:
    """Start (at most) one engine per engine_socket on this host."""

    def __init__(self, extra, socket_path, timeout_s=60.0, lcores=None):
        self.extra = extra
        self.socket_path = socket_path
        self.timeout_s = float(timeout_s)
        self.lcores = lcores
        self.proc = None  # the engine this process started, if any

    def _paths(self):
        return (self.socket_path + ".lock", self.socket_path + ".autostart.cfg",
                self.socket_path + ".log", self.socket_path + ".pid")

    def ensure(self, probe_ns=""):
        """Make an engine answer at socket_path. Returns True when one does."""
        lock_path, cfg_path, log_path, pid_path = self._paths()
        d = os.path.dirname(self.socket_path) or "."
        os.makedirs(d, exist_ok=True)
        deadline = time.monotonic() + self.timeout_s
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Wait for the lock; another rank may be starting the engine.
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        logger.error("peercache: autostart: %s held by another process for %.0f s",
                                     lock_path, self.timeout_s)
                        return False
                    time.sleep(0.05)
            c, _ = try_connect(self.socket_path, probe_ns, 2000)
            if c is not None:  # someone else started it while we waited
                c.close()
                return True
            return self._start(cfg_path, log_path, pid_path, deadline, probe_ns)
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _start(self, cfg_path, log_path, pid_path, deadline, probe_ns):
        binary = find_binary()
        cfg = autostart_config(self.extra, self.socket_path)
        text = render_config(cfg)
        fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        chk = subprocess.run([binary, "--", "--config", cfg_path, "--check-config"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if chk.returncode != 0:
            logger.error("peercache: autostart: the engine refuses the config written from "
                         "extra_config (%s): %s", cfg_path,
                         chk.stdout.decode(errors="replace").strip())
            return False
        seg = parse_size(cfg.get("global_segment_size", "4gb"), 4 << 30)
        eal_variants = []
        huge = _hugepages_ok(seg)
        if huge:
            eal_variants.append(_lcore_args(self.lcores) + ["--in-memory"])
        eal_variants.append(_lcore_args(self.lcores) + ["--no-huge", "--in-memory"])
        for eal in eal_variants:
            argv = [binary] + eal + ["--", "--config", cfg_path]
            logger.info("peercache: autostart: %s (log %s)", " ".join(argv), log_path)
            logf = open(log_path, "ab")
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        close_fds=True)
            finally:
                logf.close()
            while time.monotonic() < deadline:
                rc = proc.poll()
                if rc is not None:
                    logger.error("peercache: autostart: engine exited with code %d at start "
                                 "(see %s)", rc, log_path)
                    break
                c, _ = try_connect(self.socket_path, probe_ns, 2000)
                if c is not None:
                    c.close()
                    self.proc = proc
                    try:
                        with open(pid_path, "w") as f:
                            f.write("%d\n" % proc.pid)
                    except OSError:
                        pass
                    logger.info("peercache: autostart: engine pid %d ready at %s",
                                proc.pid, self.socket_path)
                    return True
                time.sleep(0.1)
            else:
                logger.error("peercache: autostart: no engine answered at %s within %.0f s "
                             "(see %s); stopping it", self.socket_path, self.timeout_s, log_path)
                _stop(proc)
                return False
        return False

    def stop(self):
        """Stop the engine this process started (autostart_stop_on_close)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop(proc)
            try:
                os.unlink(self._paths()[3])
            except OSError:
                pass


def _stop(proc, grace=10.0):
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except Exception:
        pass


def namespace_hash(text, limit=_lib.NS_MAX):
    """text if it fits, else a readable prefix and a digest of the whole."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:24]
    keep = limit - len(digest) - 1
    prefix = raw[:keep].decode("utf-8", "ignore")
    return prefix + "~" + digest
