"""A thin ctypes binding of build/libpeercache.so for the integration tests.

Standard library only. Pages are Python bytes/bytearrays; each page may be
given as a list of segments (scatter/gather, as SGLang's layer_first layout
hands them over).
"""

import ctypes
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("PEERCACHE_BUILD", "build"))
LIB_PATH = os.path.join(BUILD, "libpeercache.so")

DEDUP = 1


class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "segment_size", "bytes_used", "pages", "sets", "set_dedup", "set_nospace",
        "set_aborted", "gets", "get_hits", "get_misses", "get_bad_header", "exists_keys",
        "deletes", "evictions", "quarantined", "pinned", "sessions", "bad_requests",
        "reconnects", "timeouts", "remote_hits", "remote_bytes")]

    def as_dict(self):
        return {name: getattr(self, name) for name, _ in self._fields_}


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(LIB_PATH)
        _lib.pc_client_connect.restype = ctypes.c_void_p
        _lib.pc_client_connect.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint,
                                           ctypes.POINTER(ctypes.c_int)]
        _lib.pc_client_close.argtypes = [ctypes.c_void_p]
        _lib.pc_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for name in ("pc_client_batch_set", "pc_client_batch_get"):
            fn = getattr(_lib, name)
            fn.restype = ctypes.c_int
        _lib.pc_client_batch_set.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(Iov), ctypes.POINTER(ctypes.c_uint), ctypes.c_uint32,
            ctypes.POINTER(ctypes.c_int)]
        _lib.pc_client_batch_get.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(Iov), ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_int)]
        _lib.pc_client_batch_exists.restype = ctypes.c_int
        _lib.pc_client_batch_exists.argtypes = [
            ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_uint8)]
        _lib.pc_client_delete.restype = ctypes.c_int
        _lib.pc_client_delete.argtypes = [ctypes.c_void_p, ctypes.c_uint,
                                          ctypes.POINTER(ctypes.c_char_p),
                                          ctypes.POINTER(ctypes.c_int)]
        _lib.pc_client_clear.restype = ctypes.c_long
        _lib.pc_client_clear.argtypes = [ctypes.c_void_p]
        _lib.pc_client_stats.restype = ctypes.c_int
        _lib.pc_client_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(Stats)]
        _lib.pc_client_ping.restype = ctypes.c_int
        _lib.pc_client_ping.argtypes = [ctypes.c_void_p]
    return _lib


class ClientError(Exception):
    def __init__(self, rc, what):
        super().__init__("%s: %s" % (what, os.strerror(-rc) if rc < 0 else rc))
        self.rc = rc


def _keys(keys):
    arr = (ctypes.c_char_p * len(keys))()
    for i, k in enumerate(keys):
        arr[i] = k.encode() if isinstance(k, str) else k
    return arr


def _iovs(pages):
    """pages: list of pages; a page is a bytearray or a list of bytearrays."""
    segs = []
    counts = (ctypes.c_uint * len(pages))()
    keep = []
    for i, page in enumerate(pages):
        parts = page if isinstance(page, list) else [page]
        counts[i] = len(parts)
        for part in parts:
            if isinstance(part, (bytes,)):
                part = bytearray(part)
            buf = (ctypes.c_char * len(part)).from_buffer(part)
            keep.append(buf)
            segs.append((ctypes.addressof(buf), len(part)))
    iov = (Iov * max(1, len(segs)))()
    for i, (addr, n) in enumerate(segs):
        iov[i].base = addr
        iov[i].len = n
    return iov, counts, keep


class Client:
    def __init__(self, socket_path, ns="test", timeout_ms=5000):
        err = ctypes.c_int(0)
        self.handle = lib().pc_client_connect(socket_path.encode(), ns.encode(), timeout_ms,
                                              ctypes.byref(err))
        if not self.handle:
            raise ClientError(err.value, "connect " + socket_path)

    def close(self):
        if self.handle:
            lib().pc_client_close(self.handle)
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_timeout(self, ms):
        lib().pc_client_set_timeout(self.handle, ms)

    def set(self, keys, pages, prefix_depth=0):
        """Returns (rc, per-key results). pages may hold bytes (copied into bytearrays)."""
        pages = [p if isinstance(p, (bytearray, list)) else bytearray(p) for p in pages]
        iov, counts, keep = _iovs(pages)
        res = (ctypes.c_int * len(keys))()
        rc = lib().pc_client_batch_set(self.handle, len(keys), _keys(keys), iov, counts,
                                       prefix_depth, res)
        del keep
        return rc, list(res)

    def get(self, keys, sizes):
        """sizes: per page, an int or a list of segment sizes. Returns (rc, results, pages)."""
        pages = []
        for s in sizes:
            pages.append([bytearray(n) for n in s] if isinstance(s, list) else bytearray(s))
        iov, counts, keep = _iovs(pages)
        res = (ctypes.c_int * len(keys))()
        rc = lib().pc_client_batch_get(self.handle, len(keys), _keys(keys), iov, counts, res)
        del keep
        flat = [b"".join(p) if isinstance(p, list) else bytes(p) for p in pages]
        return rc, list(res), flat

    def exists(self, keys):
        present = (ctypes.c_uint8 * len(keys))()
        rc = lib().pc_client_batch_exists(self.handle, len(keys), _keys(keys), present)
        return rc, list(present)

    def delete(self, keys):
        res = (ctypes.c_int * len(keys))()
        rc = lib().pc_client_delete(self.handle, len(keys), _keys(keys), res)
        return rc, list(res)

    def clear(self):
        return lib().pc_client_clear(self.handle)

    def ping(self):
        return lib().pc_client_ping(self.handle)

    def stats(self):
        st = Stats()
        rc = lib().pc_client_stats(self.handle, ctypes.byref(st))
        if rc != 0:
            raise ClientError(rc, "stats")
        return st.as_dict()


def pattern(seed, n):
    """Deterministic, key-specific bytes: a page that lands in the wrong place is caught."""
    head = ("%d:" % seed).encode()
    block = (head * (4096 // len(head) + 1))[:4096]
    reps = n // 4096 + 1
    data = bytearray(block * reps)[:n]
    # Make every 4 KiB block distinct too.
    for off in range(0, n, 4096):
        tag = (off // 4096).to_bytes(4, "little")
        data[off:off + 4] = tag[:max(0, min(4, n - off))]
    return data
