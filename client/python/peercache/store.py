"""PeerCacheStore: SGLang's HiCache L3 storage backend over the node's PeerCache engine.

Load it through SGLang's dynamic backend factory::

    --hicache-storage-backend dynamic
    --hicache-storage-backend-extra-config '{"backend_name": "peercache",
        "module_path": "peercache.store", "class_name": "PeerCacheStore",
        "interface_v1": 1, ...}'

Every method SGLang calls returns 0 / False / None on a miss or an error and
logs (rate-limited); nothing raises into SGLang's IO threads. Every engine
round trip has the client's deadline (``request_timeout`` seconds).

Keys: SGLang's page hashes cover only tokens, so the store adds the rest. The
engine session's namespace (at most 128 bytes; a readable prefix plus a
digest when longer) names the model, the TP rank and size (MHA only: an MLA
model's KV is the same on every rank, rank 0 writes and every rank reads), the
PP rank when pp_size > 1, the attention-CP rank when attn_cp_size > 1, and the
host pool's layout (layout name, dtype, page size, bytes per page, layer
range). Zero-copy pages (batch_set_v1/batch_get_v1) are stored under the hash
itself; the generic path (set/get/batch_set/batch_get, SGLang's flat data
pages and speculative-draft "d:" pages) under ``g/<hash>``, since a flat page's
byte order differs from the packed zero-copy one for layer_first pools.

Hybrid models (v2 interface: register_mem_host_pool_v2, batch_{exists,get,set}_v2): the
"kv" pool's pages are the zero-copy pages above (v1 and v2 interoperate); every other pool
(Mamba/SWA/indexer states) has its own keys ``x/<pool>/<layout digest>/<hash>``.
"""

import ctypes
import errno
import logging
import os
import threading
import time

from . import _lib
from . import engine as _engine
from ._hicache import HAVE_SGLANG, HiCacheStorage, PoolName, PoolTransferResult, StorageMetrics

logger = logging.getLogger("peercache")

GENERIC_PREFIX = "g/"
DRAFT_PREFIX = "d:"
POOL_PREFIX = "x/"  # v2 sidecar pools: x/<pool name>/<layout digest>/<hash>
KV_POOL = "kv"

# extra_config keys read by the backend itself (besides the engine keys).
BACKEND_KEYS = {
    "engine_socket", "autostart", "autostart_stop_on_close", "autostart_lcores",
    "autostart_timeout", "request_timeout", "namespace", "interface_v1",
}
# Keys SGLang itself uses; some reach extra_config depending on the version.
SGLANG_KEYS = {
    "backend_name", "module_path", "class_name", "tp_lcm_size", "prefetch_threshold",
    "prefetch_timeout_base", "prefetch_timeout_per_ki_token", "prefetch_timeout_max",
    "hicache_storage_pass_prefix_keys",
}


class _RateLimitedLog:
    """At most one line per `what` every `period` seconds, with a count of the rest."""

    def __init__(self, period=10.0):
        self.period = period
        self.lock = threading.Lock()
        self.last = {}
        self.suppressed = {}

    def __call__(self, level, what, fmt, *args):
        now = time.monotonic()
        with self.lock:
            t = self.last.get(what)
            if t is not None and now - t < self.period:
                self.suppressed[what] = self.suppressed.get(what, 0) + 1
                return
            self.last[what] = now
            n = self.suppressed.pop(what, 0)
        msg = fmt % args if args else fmt
        if n:
            msg += " (%d similar message(s) suppressed)" % n
        logger.log(level, "peercache: %s", msg)


def _cfg(cfg, name, default):
    v = getattr(cfg, name, default)
    return default if v is None else v


def _sanitize(s):
    return "".join(ch if 0x20 < ord(ch) < 0x7f else "_" for ch in str(s)).replace("/", "--")


class _Buf:
    """A caller's buffer as (address, size), with what keeps it alive."""

    __slots__ = ("addr", "size", "keep", "after")

    def __init__(self, addr, size, keep=None, after=None):
        self.addr = addr
        self.size = size
        self.keep = keep
        self.after = after  # called after a successful GET (copy back), or None


def _is_cpu(t):
    dev = getattr(t, "device", None)
    if dev is None:
        return True
    return getattr(dev, "type", str(dev)) == "cpu"


def _buffer(obj, size=None, writable=False):
    """(addr, size) of obj: an int address (with size), a tensor, a numpy array, or a
    bytes-like object. Returns a _Buf, or None (with no exception) when obj cannot be used
    (e.g. a bytes destination, which cannot be filled; a GPU tensor as a GET destination)."""
    if obj is None:
        return None
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        if not size or int(size) <= 0 or obj == 0:
            return None
        return _Buf(int(obj), int(size))
    if hasattr(obj, "data_ptr") and hasattr(obj, "numel") and hasattr(obj, "element_size"):
        t = obj
        if not _is_cpu(t):
            if writable:
                return None
            t = t.cpu()
        if hasattr(t, "is_contiguous") and not t.is_contiguous():
            if writable:
                tmp = t.contiguous()
                return _Buf(int(tmp.data_ptr()), int(tmp.numel()) * int(tmp.element_size()),
                            keep=tmp, after=lambda: obj.copy_(tmp))
            t = t.contiguous()
        nbytes = int(t.numel()) * int(t.element_size())
        return _Buf(int(t.data_ptr()), nbytes, keep=t)
    if hasattr(obj, "ctypes") and hasattr(obj, "nbytes") and hasattr(obj, "flags"):
        a = obj
        if writable and not a.flags.writeable:
            return None
        if not a.flags.c_contiguous:
            if writable:
                return None
            a = a.copy(order="C")
        return _Buf(int(a.ctypes.data), int(a.nbytes), keep=a)
    if isinstance(obj, bytes):
        if writable:
            return None  # bug 15: an immutable bytes object can never be filled
        cp = ctypes.c_char_p(obj)
        return _Buf(ctypes.cast(cp, ctypes.c_void_p).value or 0, len(obj), keep=(obj, cp))
    if isinstance(obj, (bytearray, memoryview)):
        mv = memoryview(obj)
        if not mv.contiguous:
            return None
        if mv.readonly:
            if writable:
                return None
            b = mv.tobytes()
            cp = ctypes.c_char_p(b)
            return _Buf(ctypes.cast(cp, ctypes.c_void_p).value or 0, len(b), keep=(b, cp))
        n = mv.nbytes
        if n == 0:
            return None
        c = (ctypes.c_char * n).from_buffer(mv.cast("B"))
        return _Buf(ctypes.addressof(c), n, keep=(mv, c))
    return None


def _pool_name(name):
    """A v2 pool name (SGLang's PoolName enum, or a plain string) as a plain string."""
    return str(getattr(name, "value", name))


def _is_trailing(policy):
    return str(getattr(policy, "value", policy)).lower() == "trailing_pages"


def _n_indices(idx):
    """How many host indices idx holds (a tensor, a list), or None when unknown."""
    try:
        if hasattr(idx, "numel"):
            return int(idx.numel())
        return len(idx)
    except Exception:
        return None


class _SidecarPool:
    """A v2 extra pool (Mamba/SWA/indexer states): its host pool, key prefix, and the
    segments per page and bytes per page its get_page_buffer_meta gave at registration
    (None when the probe failed)."""

    __slots__ = ("pool", "prefix", "segs", "page_bytes", "fingerprint")

    def __init__(self, pool, prefix, segs, page_bytes, fingerprint):
        self.pool = pool
        self.prefix = prefix
        self.segs = segs
        self.page_bytes = page_bytes
        self.fingerprint = fingerprint


def _iov_array(ptrs, sizes):
    m = len(ptrs)
    flat = [0] * (2 * m)
    flat[0::2] = [int(p) for p in ptrs]
    flat[1::2] = [int(s) for s in sizes]
    arr = (ctypes.c_size_t * max(2, 2 * m))(*flat)
    return ctypes.cast(arr, ctypes.POINTER(_lib.Iov)), arr


class PeerCacheStore(HiCacheStorage):
    """SGLang HiCache storage backend (`module_path` peercache.store)."""

    def __init__(self, storage_config=None, kwargs=None):
        self._log = _RateLimitedLog()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._client = None
        self._closed = False
        self._next_connect = 0.0
        self._next_restart = 0.0
        self._restarting = False
        self.mem_pool_host = None
        self._pools = {}  # v2 sidecar pools: name -> _SidecarPool

        cfg = storage_config
        self.storage_config = cfg
        extra = {}
        if isinstance(kwargs, dict):
            extra.update(kwargs)
        extra.update(_engine.flatten(_cfg(cfg, "extra_config", None) or {}))
        self.extra_config = extra

        self.tp_rank = int(_cfg(cfg, "tp_rank", 0))
        self.tp_size = int(_cfg(cfg, "tp_size", 1))
        self.pp_rank = int(_cfg(cfg, "pp_rank", 0))
        self.pp_size = int(_cfg(cfg, "pp_size", 1))
        self.cp_rank = int(_cfg(cfg, "attn_cp_rank", 0))
        self.cp_size = int(_cfg(cfg, "attn_cp_size", 1))
        self.is_mla = bool(_cfg(cfg, "is_mla_model", False))
        self.is_page_first = bool(_cfg(cfg, "is_page_first_layout", False))
        self.model_name = _cfg(cfg, "model_name", "") or ""
        self.should_split_heads = bool(_cfg(cfg, "should_split_heads", False))
        self.tp_lcm_size = _cfg(cfg, "tp_lcm_size", None)
        self.metrics_enabled = bool(_cfg(cfg, "enable_storage_metrics", False))

        unknown = sorted(k for k in extra if k not in BACKEND_KEYS and k not in SGLANG_KEYS
                         and k not in _engine.ENGINE_KEYS and k not in _engine.FACTORY_KEYS)
        if unknown:
            logger.warning("peercache: ignoring unknown extra_config key(s): %s",
                           ", ".join(unknown))

        self.socket_path = str(extra.get("engine_socket") or os.environ.get("PEERCACHE_SOCKET")
                               or _lib.DEFAULT_SOCKET)
        self.interface_v1 = _engine.to_bool(extra.get("interface_v1"), False)
        self.autostart = _engine.to_bool(extra.get("autostart"), True)
        self.stop_on_close = _engine.to_bool(extra.get("autostart_stop_on_close"), False)
        try:
            self.timeout_ms = max(1, int(float(extra.get("request_timeout", 5.0)) * 1000))
        except (TypeError, ValueError):
            logger.warning("peercache: request_timeout %r is not a number; using 5 s",
                           extra.get("request_timeout"))
            self.timeout_ms = 5000
        try:
            autostart_timeout = float(extra.get("autostart_timeout", 60.0))
        except (TypeError, ValueError):
            autostart_timeout = 60.0
        self.tag = str(extra.get("namespace") or "")

        # Fail loudly (at start-up, not in an IO thread) when the library is missing.
        _lib.load()

        self._layout = None  # set by register_mem_pool_host
        self._page_bytes = None
        self.namespace = self._make_namespace()
        self._metrics = StorageMetrics() if self.metrics_enabled else None

        self._autostart = _engine.Autostart(extra, self.socket_path, autostart_timeout,
                                            extra.get("autostart_lcores"))
        client, err = _engine.try_connect(self.socket_path, self.namespace, self.timeout_ms)
        if client is None and self.autostart:
            try:
                self._autostart.ensure(self.namespace)
            except Exception as e:  # never fail SGLang's start-up for the cache
                logger.error("peercache: autostart failed: %s", e)
            client, err = _engine.try_connect(self.socket_path, self.namespace, self.timeout_ms)
        elif client is not None:
            started = sorted(k for k in extra if k in _engine.ENGINE_KEYS
                             and k not in ("engine_socket", "request_timeout"))
            if started:
                logger.info("peercache: engine already running at %s; engine key(s) %s in "
                            "extra_config are not applied to it", self.socket_path,
                            ", ".join(started))
        if client is None:
            logger.error("peercache: no engine at %s (%s)%s; every lookup is a miss until one "
                         "answers", self.socket_path, _lib.strerror(err),
                         "" if self.autostart else " and autostart is off")
        self._client = client
        logger.info("peercache: PeerCacheStore ready: socket %s, namespace %r, interface_v1 %d, "
                    "%s, library %s", self.socket_path, self.namespace, int(self.interface_v1),
                    "SGLang" if HAVE_SGLANG else "stand-in HiCacheStorage",
                    _lib.library_path())

    # ------------------------------------------------------------------ namespace

    def _make_namespace(self):
        parts = ["sgl", _sanitize(self.model_name) or "model"]
        if self.tag:
            parts.append(_sanitize(self.tag))
        if self.is_mla:
            parts.append("mla")
        else:
            parts.append("tp%dof%d" % (self.tp_rank, self.tp_size))
            if self.should_split_heads:
                parts.append("lcm%s" % self.tp_lcm_size)
        if self.pp_size > 1:
            parts.append("pp%dof%d" % (self.pp_rank, self.pp_size))
        if self.cp_size > 1:
            parts.append("cp%dof%d" % (self.cp_rank, self.cp_size))
        parts.append(self._layout or "nopool")
        return _engine.namespace_hash("/".join(parts))

    def _layout_fingerprint(self, pool):
        layout = getattr(pool, "layout", None) or (
            "page_first" if self.is_page_first else "layer_first")
        dtype = getattr(pool, "dtype", None)
        dname = str(dtype).replace("torch.", "") if dtype is not None else "u8"
        isz = getattr(dtype, "itemsize", None)
        page = getattr(pool, "page_size", None)
        bpp = None
        spt = getattr(pool, "size_per_token", None)
        if isinstance(spt, int) and isinstance(page, int) and spt > 0:
            bpp = spt * page
        if bpp is None and isinstance(page, int) and page > 0:
            bpp = self._probe_page_bytes(pool, page)
        start = getattr(pool, "start_layer", None)
        end = getattr(pool, "end_layer", None)
        if start is None or end is None:
            n = getattr(pool, "layer_num", None)
            start, end = (0, n) if n is not None else ("?", "?")
        fp = "%s.%s%s.p%s.b%s.l%s-%s" % (layout, dname, "x%d" % isz if isz else "",
                                          page if page is not None else "?",
                                          bpp if bpp is not None else "?", start, end)
        heads = getattr(pool, "head_num", None)
        hdim = getattr(pool, "head_dim", None)
        if isinstance(heads, int) and isinstance(hdim, int):
            fp += ".h%dx%d" % (heads, hdim)
        return fp, bpp

    @staticmethod
    def _probe_page_bytes(pool, page):
        idx = None
        try:
            import torch  # noqa: F401  (only when present)

            idx = torch.arange(page, dtype=torch.int64)
        except Exception:
            idx = None
        for cand in (idx, list(range(page))):
            if cand is None:
                continue
            try:
                _, sizes = pool.get_page_buffer_meta(cand)
                return int(sum(int(s) for s in sizes))
            except Exception:
                continue
        return None

    # ------------------------------------------------------------------ connection

    def _acquire(self):
        """The client for the current namespace (counted in flight), or None."""
        with self._lock:
            if self._closed:
                return None
            c = self._client
            if c is None or c.ns != self.namespace:
                now = time.monotonic()
                if now < self._next_connect:
                    return None
                c, err = _engine.try_connect(self.socket_path, self.namespace, self.timeout_ms)
                if c is None:
                    self._next_connect = now + 1.0
                    self._log(logging.WARNING, "connect", "no engine at %s: %s",
                              self.socket_path, _lib.strerror(err))
                    self._maybe_restart(err)
                    return None
                old, self._client = self._client, c
                if old is not None:
                    self._retire(old)
            self._inflight += 1
            return c

    def _release(self, c, rc=0):
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()
            if isinstance(rc, int) and rc in (-errno.ENOTCONN, -errno.ECONNREFUSED,
                                              -errno.ENOENT):
                self._maybe_restart(rc)

    def _retire(self, old):
        # Called with the lock held; the old client may still be in use on other threads.
        def _close_later():
            with self._lock:
                self._idle.wait_for(lambda: self._inflight == 0,
                                    timeout=self.timeout_ms / 1000.0 + 1)
            old.close()

        threading.Thread(target=_close_later, daemon=True).start()

    def _maybe_restart(self, err):
        """With autostart, restart a vanished engine in the background (lock held)."""
        if not self.autostart or self._restarting or self._closed:
            return
        if err not in (-errno.ENOENT, -errno.ECONNREFUSED, -errno.ENOTCONN):
            return
        now = time.monotonic()
        if now < self._next_restart:
            return
        self._next_restart = now + 30.0
        self._restarting = True

        def _run():
            try:
                self._autostart.ensure(self.namespace)
            except Exception as e:
                self._log(logging.ERROR, "autostart", "autostart failed: %s", e)
            finally:
                with self._lock:
                    self._restarting = False
                    self._next_connect = 0.0

        threading.Thread(target=_run, name="peercache-autostart", daemon=True).start()

    # ------------------------------------------------------------------ keys

    def _key(self, key, generic=False):
        k = str(key)
        if generic:
            k = GENERIC_PREFIX + k
        b = k.encode("utf-8", "surrogateescape")
        if len(b) > _lib.KEY_MAX or not b:
            import hashlib

            b = (("g/#" if generic else "#") + hashlib.sha256(b).hexdigest()).encode()
        return b

    @staticmethod
    def _prefix_depth(extra_info):
        pk = getattr(extra_info, "prefix_keys", None) if extra_info is not None else None
        try:
            return len(pk) if pk else 0
        except TypeError:
            return 0

    # ------------------------------------------------------------------ SGLang API

    def register_mem_pool_host(self, mem_pool_host):
        try:
            super().register_mem_pool_host(mem_pool_host)
        except Exception:
            self.mem_pool_host = mem_pool_host
        self.mem_pool_host = mem_pool_host
        try:
            fp, bpp = self._layout_fingerprint(mem_pool_host)
        except Exception as e:
            logger.warning("peercache: cannot read the host pool's layout (%s)", e)
            fp, bpp = "layout?", None
        layout = fp.split(".", 1)[0]
        if layout not in ("layer_first", "page_first", "page_first_direct", "page_head"):
            logger.warning("peercache: host pool layout %r is untested", layout)
        with self._lock:
            self._layout = fp
            self._page_bytes = bpp
            self.namespace = self._make_namespace()
        logger.info("peercache: host pool registered: namespace %r", self.namespace)

    def _page_meta(self, host_indices, n, pool=None, what="kv"):
        """(pointers, sizes, segments per page) of n pages, or None (logged). Segments per
        page is derived, len(pointers) / n: SWA and multi-buffer pools give 2 or more
        pointers per page, and a count that is not a multiple of n cannot be mapped to
        pages at all (bug 14)."""
        if pool is None:
            pool = self.mem_pool_host
        if pool is None:
            self._log(logging.ERROR, "nopool", "zero-copy call before register_mem_pool_host")
            return None
        ptrs, sizes = pool.get_page_buffer_meta(host_indices)
        ptrs, sizes = list(ptrs), list(sizes)
        if len(ptrs) != len(sizes) or not ptrs or len(ptrs) % n:
            self._log(logging.ERROR, "meta-" + what, "pool %s: get_page_buffer_meta gave %d "
                      "pointers and %d sizes for %d pages; no page transferred", what,
                      len(ptrs), len(sizes), n)
            return None
        return ptrs, sizes, len(ptrs) // n

    def batch_set_v1(self, keys, host_indices, extra_info=None):
        n = len(keys) if keys is not None else 0
        out = [False] * n
        if n == 0:
            return out
        try:
            meta = self._page_meta(host_indices, n)
            if meta is None:
                return out
            ptrs, sizes, per = meta
            out = self._set_iov([self._key(k) for k in keys], ptrs, sizes, [per] * n,
                                self._prefix_depth(extra_info))
        except Exception as e:
            self._log(logging.ERROR, "set_v1", "batch_set_v1 failed: %r", e)
        return out

    def batch_get_v1(self, keys, host_indices, extra_info=None):
        n = len(keys) if keys is not None else 0
        out = [False] * n
        if n == 0:
            return out
        try:
            meta = self._page_meta(host_indices, n)
            if meta is None:
                return out
            ptrs, sizes, per = meta
            out = self._get_iov([self._key(k) for k in keys], ptrs, sizes, [per] * n)
        except Exception as e:
            self._log(logging.ERROR, "get_v1", "batch_get_v1 failed: %r", e)
        return out

    def _set_iov(self, keys_b, ptrs, sizes, counts, depth):
        return self._transfer(True, keys_b, ptrs, sizes, counts, depth)

    def _get_iov(self, keys_b, ptrs, sizes, counts):
        return self._transfer(False, keys_b, ptrs, sizes, counts, 0)

    def _transfer(self, is_set, keys_b, ptrs, sizes, counts, depth):
        """One batch_set (is_set) or batch_get of pages given as iovecs; a bool per key.
        A SET of a key already stored is a success; a GET miss is no error worth a log."""
        n = len(keys_b)
        out = [False] * n
        what = "set" if is_set else "get"
        iov, keep = _iov_array(ptrs, sizes)
        niov = (ctypes.c_uint * n)(*counts)
        res = (ctypes.c_int * n)()
        c = self._acquire()
        if c is None:
            return out
        t0 = time.perf_counter()
        rc = -errno.EIO
        try:
            if is_set:
                rc = c.batch_set(keys_b, iov, niov, depth, res)
            else:
                rc = c.batch_get(keys_b, iov, niov, res)
        finally:
            self._release(c, rc)
        dt = time.perf_counter() - t0
        del keep
        if rc < 0:
            if not (is_set and rc == -errno.ENOSPC):
                self._log(logging.WARNING, what, "batch_%s of %d page(s): %s", what, n,
                          _lib.strerror(rc))
            if not is_set:
                return out
        ok_codes = (0, _lib.DEDUP) if is_set else (0,)
        quiet = () if is_set else (-errno.ENOENT,)
        bad = {}
        for i in range(n):
            r = res[i]
            if r in ok_codes:
                out[i] = True
            elif r not in quiet:
                bad[r] = bad.get(r, 0) + 1
        if bad and rc >= 0:
            self._log(logging.WARNING, what + "-keys", "batch_%s: %s", what,
                      ", ".join("%d page(s) %s" % (v, _lib.strerror(k)) for k, v in bad.items()))
        if self._metrics is not None:
            ok = sum(out)
            nbytes = sum(int(x) for x in sizes) * ok // max(1, n)
            gbps = nbytes / (1 << 30) / max(dt, 1e-9)
            with self._lock:
                if is_set:
                    self._metrics.backup_pgs.append(ok)
                    self._metrics.backup_bandwidth.append(gbps)
                else:
                    self._metrics.prefetch_pgs.append(ok)
                    self._metrics.prefetch_bandwidth.append(gbps)
        return out

    def _exists(self, keys_b):
        """Per-key presence list, or None on error."""
        n = len(keys_b)
        present = (ctypes.c_uint8 * n)()
        c = self._acquire()
        if c is None:
            return None
        rc = -errno.EIO
        try:
            rc = c.batch_exists(keys_b, present)
        finally:
            self._release(c, rc)
        if rc < 0:
            self._log(logging.WARNING, "exists", "batch_exists of %d key(s): %s", n,
                      _lib.strerror(rc))
            return None
        return [bool(present[i]) for i in range(n)]

    def batch_exists(self, keys, extra_info=None):
        """Number of leading keys whose pages are stored (0..len(keys))."""
        try:
            n = len(keys) if keys is not None else 0
            if n == 0:
                return 0
            keys = [str(k) for k in keys]
            present = self._exists([self._key(k, self._generic_key(k)) for k in keys])
            if present is None:
                return 0
            lead = present.index(False) if False in present else n
            return int(lead)
        except Exception as e:
            self._log(logging.ERROR, "batch_exists", "batch_exists failed: %r", e)
            return 0

    def exists(self, key):
        """Whether key's page is stored: batch_exists([key]) > 0, as the base class defines it."""
        return self.batch_exists([key]) > 0

    def _generic_key(self, key):
        """
        The keyspace SGLang reads key from: draft pages ("d:") always go through the generic
        path, the others through the path this backend was configured for (zero-copy when
        interface_v1 is set). One answer per key, so batch_exists never counts a page that
        the following read cannot deliver.
        """
        return key.startswith(DRAFT_PREFIX) or not self.interface_v1

    # ------------------------------------------------------------------ v2 (hybrid models)
    #
    # SGLang's v2 interface (PR #20457): a hybrid model's host pools are registered by name
    # (register_mem_host_pool_v2); batch_get_v2 / batch_set_v2 take one PoolTransfer (name,
    # keys, host_indices) per pool and return {name: [bool per key]}; batch_exists_v2 returns
    # PoolTransferResult(usable prefix, {pool name: hit pages}). The "kv" pool's pages are
    # the v1 zero-copy pages (same keys, same bytes), so v1 and v2 interoperate. Each other
    # pool has its own key space inside the namespace, x/<name>/<digest of its layout>/<hash>,
    # so its pages never collide with KV pages or with another layout of the same pool.

    def register_mem_host_pool_v2(self, host_pool, host_pool_name):
        try:
            try:
                super().register_mem_host_pool_v2(host_pool, host_pool_name)
            except Exception:
                pass
            name = _pool_name(host_pool_name)
            if name == KV_POOL:
                self.register_mem_pool_host(host_pool)
                return
            fp, segs, page_bytes = self._sidecar_fingerprint(name, host_pool)
            import hashlib

            digest = hashlib.sha256(fp.encode("utf-8", "replace")).hexdigest()[:16]
            prefix = "%s%s/%s/" % (POOL_PREFIX, _sanitize(name)[:24] or "pool", digest)
            with self._lock:
                self._pools[name] = _SidecarPool(host_pool, prefix, segs, page_bytes, fp)
            logger.info("peercache: pool %r registered: %s (%s segment(s) per page, %s "
                        "bytes per page), keys %s<hash>", name, fp,
                        segs if segs is not None else "?",
                        page_bytes if page_bytes is not None else "?", prefix)
        except Exception as e:
            self._log(logging.ERROR, "register_v2", "register_mem_host_pool_v2(%r) failed: %r",
                      host_pool_name, e)

    def _sidecar_fingerprint(self, name, pool):
        """(layout fingerprint, segments per page, bytes per page) of an extra pool. The
        segment layout comes from get_page_buffer_meta over the first page's indices."""
        page = getattr(pool, "page_size", None)
        page = page if isinstance(page, int) and page > 0 else 1
        segs = page_bytes = None
        seg_sizes = "?"
        cands = []
        try:
            import torch  # noqa: F401  (only when present)

            cands.append(torch.arange(page, dtype=torch.int64))
        except Exception:
            pass
        cands.append(list(range(page)))
        for cand in cands:
            try:
                ptrs, sizes = pool.get_page_buffer_meta(cand)
                ptrs, sizes = list(ptrs), [int(x) for x in sizes]
                if ptrs and len(ptrs) == len(sizes):
                    segs, page_bytes = len(ptrs), sum(sizes)
                    seg_sizes = "+".join(str(x) for x in sizes)
                    break
            except Exception:
                continue
        dtype = getattr(pool, "dtype", None)
        start = getattr(pool, "start_layer", None)
        end = getattr(pool, "end_layer", None)
        if start is None or end is None:
            n = getattr(pool, "layer_num", None)
            start, end = (0, n) if n is not None else ("?", "?")
        fp = "%s.%s.%s.%s.p%d.s%s.l%s-%s" % (
            name, type(pool).__name__, getattr(pool, "layout", None) or "-",
            str(dtype).replace("torch.", "") if dtype is not None else "-", page, seg_sizes,
            start, end)
        return fp, segs, page_bytes

    def _pool_key(self, sp, key):
        b = (sp.prefix + str(key)).encode("utf-8", "surrogateescape")
        if len(b) > _lib.KEY_MAX:
            import hashlib

            b = (sp.prefix + "#" + hashlib.sha256(str(key).encode(
                "utf-8", "surrogateescape")).hexdigest()).encode()[:_lib.KEY_MAX]
        return b

    def _transfer_v2(self, t, keys, write, extra_info):
        """One PoolTransfer: a list of bools, one per key (all False on any mismatch)."""
        n = len(keys)
        name = _pool_name(getattr(t, "name", None))
        host_indices = getattr(t, "host_indices", None)
        if host_indices is None:
            self._log(logging.ERROR, "v2-noidx", "pool %s: transfer without host_indices", name)
            return [False] * n
        if name == KV_POOL:
            pool, sp = self.mem_pool_host, None
            if pool is None:
                self._log(logging.ERROR, "nopool", "v2 kv transfer before the kv pool is "
                          "registered")
                return [False] * n
            keys_b = [self._key(k) for k in keys]
        else:
            with self._lock:
                sp = self._pools.get(name)
            if sp is None:
                self._log(logging.ERROR, "v2-unknown-" + name, "pool %s is not registered "
                          "(register_mem_host_pool_v2); no page transferred", name)
                return [False] * n
            pool = sp.pool
            keys_b = [self._pool_key(sp, k) for k in keys]
        page = getattr(pool, "page_size", None)
        page = page if isinstance(page, int) and page > 0 else 1
        ni = _n_indices(host_indices)
        if ni is not None and ni != n * page:
            self._log(logging.ERROR, "v2-idx-" + name, "pool %s: %d host indices for %d "
                      "page(s) of %d; no page transferred", name, ni, n, page)
            return [False] * n
        meta = self._page_meta(host_indices, n, pool, name)
        if meta is None:
            return [False] * n
        ptrs, sizes, per = meta
        if sp is not None:
            if sp.segs is not None and per != sp.segs:
                self._log(logging.ERROR, "v2-segs-" + name, "pool %s: %d segment(s) per page, "
                          "registered with %d; no page transferred", name, per, sp.segs)
                return [False] * n
            if sp.page_bytes is not None:
                for i in range(n):
                    got = sum(int(x) for x in sizes[i * per:(i + 1) * per])
                    if got != sp.page_bytes:
                        self._log(logging.ERROR, "v2-bytes-" + name, "pool %s: page %d is %d "
                                  "bytes, registered with %d; no page transferred", name, i,
                                  got, sp.page_bytes)
                        return [False] * n
        if write:
            depth = self._prefix_depth(extra_info) if sp is None else 0
            return self._set_iov(keys_b, ptrs, sizes, [per] * n, depth)
        return self._get_iov(keys_b, ptrs, sizes, [per] * n)

    def _io_v2(self, transfers, extra_info, write):
        out = {}
        try:
            transfers = list(transfers or [])
        except Exception as e:
            self._log(logging.ERROR, "v2-args", "v2 transfers unusable: %r", e)
            return out
        for t in transfers:
            try:
                keys = list(getattr(t, "keys", None) or [])
            except Exception:
                keys = []
            res = [False] * len(keys)
            if keys:
                try:
                    res = self._transfer_v2(t, keys, write, extra_info)
                except Exception as e:
                    self._log(logging.ERROR, "v2-io", "batch_%s_v2 of pool %s failed: %r",
                              "set" if write else "get", _pool_name(getattr(t, "name", "?")), e)
                    res = [False] * len(keys)
            try:
                out[getattr(t, "name", None)] = res
            except Exception:
                out[_pool_name(getattr(t, "name", None))] = res
        return out

    def batch_set_v2(self, transfers, extra_info=None):
        """Store each PoolTransfer's pages from host memory: {pool name: [bool per key]}."""
        return self._io_v2(transfers, extra_info, True)

    def batch_get_v2(self, transfers, extra_info=None):
        """Load each PoolTransfer's pages into host memory: {pool name: [bool per key]}."""
        return self._io_v2(transfers, extra_info, False)

    def batch_exists_v2(self, keys, pool_transfers=None, extra_info=None):
        """PoolTransferResult(usable prefix, {pool: hit pages}), SGLang's fold: the KV
        prefix; then per extra pool, ALL_PAGES = its leading pages within the KV prefix,
        TRAILING_PAGES = the longest prefix (<= the KV prefix) whose last len(t.keys)
        pages (all of them when the prefix is shorter) are present; the result is the
        minimum. One engine round trip for all pools; any error is a miss (0)."""
        try:
            keys = [str(k) for k in (keys or [])]
            n = len(keys)
            if n == 0:
                return PoolTransferResult(0, {})
            transfers = list(pool_transfers or [])
            q = [self._key(k) for k in keys]
            spans = []
            for t in transfers:
                name = _pool_name(getattr(t, "name", None))
                if name == KV_POOL:
                    spans.append((t, 0))
                    continue
                with self._lock:
                    sp = self._pools.get(name)
                if sp is None:
                    self._log(logging.ERROR, "v2-unknown-" + name, "batch_exists_v2: pool %s "
                              "is not registered; no usable prefix", name)
                    return PoolTransferResult(0, {})
                spans.append((t, len(q)))
                q.extend(self._pool_key(sp, k) for k in keys)
            present = self._exists(q)
            if present is None or len(present) != len(q):
                return PoolTransferResult(0, {})
            kv = present[:n]
            kv_pages = kv.index(False) if False in kv else n
            hits = {PoolName.KV: kv_pages} if kv_pages else {}
            final = kv_pages
            for t, off in spans:
                if final == 0:
                    break
                p = present[off:off + kv_pages]
                if _is_trailing(getattr(t, "hit_policy", None)):
                    tk = getattr(t, "keys", None)
                    trailing = max(1, len(tk) if tk else 1)
                    # run[i]: consecutive present pages ending at page i.
                    run, r = [], 0
                    for ok in p:
                        r = r + 1 if ok else 0
                        run.append(r)
                    boundary = 0
                    for plen in range(kv_pages, 0, -1):
                        if run[plen - 1] >= min(trailing, plen):
                            boundary = plen
                            break
                else:
                    boundary = p.index(False) if False in p else kv_pages
                if boundary:
                    hits[getattr(t, "name", None)] = boundary
                final = min(final, boundary)
            return PoolTransferResult(int(final), hits)
        except Exception as e:
            self._log(logging.ERROR, "batch_exists_v2", "batch_exists_v2 failed: %r", e)
            try:
                return PoolTransferResult(0, {})
            except Exception:
                return None

    # generic path --------------------------------------------------------

    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None):
        """Store flat pages; True only if every page is stored (or already was)."""
        try:
            n = len(keys) if keys is not None else 0
            if n == 0:
                return True
            bufs = []
            for i in range(n):
                v = values[i] if values is not None else None
                size = target_sizes[i] if target_sizes is not None else None
                if v is None and target_locations is not None:
                    v = target_locations[i]
                b = _buffer(v, size, writable=False)
                if b is None or b.size <= 0:
                    self._log(logging.WARNING, "set-value", "batch_set: unusable value for "
                              "key %s (%s)", keys[i], type(v).__name__)
                    return False
                bufs.append(b)
            out = self._set_iov([self._key(k, True) for k in keys], [b.addr for b in bufs],
                                [b.size for b in bufs], [1] * n, 0)
            del bufs
            return all(out)
        except Exception as e:
            self._log(logging.ERROR, "batch_set", "batch_set failed: %r", e)
            return False

    def set(self, key, value=None, target_location=None, target_sizes=None):
        try:
            return self.batch_set([key], [value] if value is not None else None,
                                  [target_location] if target_location is not None else None,
                                  [target_sizes] if target_sizes is not None else None)
        except Exception as e:
            self._log(logging.ERROR, "set", "set failed: %r", e)
            return False

    def batch_get(self, keys, target_locations=None, target_sizes=None):
        """Fill the destinations; the destination on a hit, None on a miss, per key.

        A destination that cannot be filled in place (bytes, a read-only buffer, a GPU
        tensor) is a miss. Without destinations, pages of the registered pool's page
        size are returned as bytearrays (None when that size is unknown)."""
        n = len(keys) if keys is not None else 0
        out = [None] * n
        try:
            if n == 0:
                return out
            dests, bufs, idx = [], [], []
            for i in range(n):
                d = target_locations[i] if target_locations is not None else None
                size = target_sizes[i] if target_sizes is not None else None
                if d is None:
                    sz = size if size else self._page_bytes
                    if not sz:
                        continue
                    d = bytearray(int(sz))
                b = _buffer(d, size, writable=True)
                if b is None or b.size <= 0:
                    self._log(logging.WARNING, "get-dest", "batch_get: destination for key "
                              "%s (%s) cannot be filled; a miss", keys[i], type(d).__name__)
                    continue
                if isinstance(d, int) and size:
                    d = d  # an address: returned as given on a hit
                dests.append(d)
                bufs.append(b)
                idx.append(i)
            if not idx:
                return out
            got = self._get_iov([self._key(keys[i], True) for i in idx], [b.addr for b in bufs],
                                [b.size for b in bufs], [1] * len(idx))
            for j, i in enumerate(idx):
                if got[j]:
                    if bufs[j].after is not None:
                        bufs[j].after()
                    out[i] = dests[j]
            return out
        except Exception as e:
            self._log(logging.ERROR, "batch_get", "batch_get failed: %r", e)
            return [None] * n

    def get(self, key, target_location=None, target_sizes=None):
        try:
            r = self.batch_get([key], [target_location] if target_location is not None else None,
                               [target_sizes] if target_sizes is not None else None)
            return r[0] if r else None
        except Exception as e:
            self._log(logging.ERROR, "get", "get failed: %r", e)
            return None

    # admin ---------------------------------------------------------------

    def clear(self):
        """Delete every page of this store's namespace (zero-copy and generic)."""
        try:
            c = self._acquire()
            if c is None:
                return
            rc = -errno.EIO
            try:
                rc = c.clear()
            finally:
                self._release(c, rc)
            if rc < 0:
                self._log(logging.WARNING, "clear", "clear: %s", _lib.strerror(rc))
            else:
                logger.info("peercache: cleared %d page(s) of namespace %r", rc, self.namespace)
        except Exception as e:
            self._log(logging.ERROR, "clear", "clear failed: %r", e)

    def get_stats(self):
        """None unless storage metrics are on; else the StorageMetrics since the last call."""
        if self._metrics is None:
            return None
        with self._lock:
            m, self._metrics = self._metrics, StorageMetrics()
        return m

    def engine_stats(self):
        """The engine's and client's counters (a dict), or None. Not called by SGLang."""
        c = self._acquire()
        if c is None:
            return None
        try:
            return c.stats()
        except Exception:
            return None
        finally:
            self._release(c)

    def close(self):
        """Disconnect (idempotent). The engine keeps running for the node's other ranks,
        unless this process autostarted it and autostart_stop_on_close is true."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._idle.wait_for(lambda: self._inflight == 0,
                                timeout=self.timeout_ms / 1000.0 + 1)
            c, self._client = self._client, None
        try:
            if c is not None:
                c.close()
        except Exception:
            pass
        if self.stop_on_close:
            try:
                self._autostart.stop()
            except Exception as e:
                logger.warning("peercache: stopping the autostarted engine: %s", e)

    def __del__(self):
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:
            pass
