"""ctypes binding of libpeercache (client/peercache.h).

Standard library only. ctypes.CDLL releases the GIL around every foreign call,
so SGLang's prefetch, prefetch-IO and backup threads really run concurrently;
libpeercache itself is thread-safe on one client handle.

Where the library comes from, first match wins:

1. ``$PEERCACHE_LIB`` (a path to the .so);
2. next to the package: ``peercache/libpeercache.so`` (a wheel that ships it),
   or ``<checkout>/build/libpeercache.so`` when the package is imported from a
   source checkout (``pip install -e client/python``);
3. the dynamic loader's path: ``libpeercache.so.1`` / ``libpeercache.so``
   (``make install``, ``LD_LIBRARY_PATH``), then ``ctypes.util.find_library``.
"""

import ctypes
import ctypes.util
import errno
import os
import threading

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
# client/python/peercache -> the repository root
CHECKOUT_ROOT = os.path.abspath(os.path.join(PKG_DIR, "..", "..", ".."))

KEY_MAX = 128  # PC_CLIENT_KEY_MAX
NS_MAX = 128  # PC_CLIENT_NS_MAX
BATCH_MAX = 128  # PC_CLIENT_BATCH_MAX (the library splits larger batches itself)
DEDUP = 1  # PC_CLIENT_DEDUP

DEFAULT_SOCKET = "/tmp/peercache/engine.sock"


class Iov(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


STATS_FIELDS = (
    "segment_size", "bytes_used", "pages", "sets", "set_dedup", "set_nospace",
    "set_aborted", "gets", "get_hits", "get_misses", "get_bad_header", "exists_keys",
    "deletes", "evictions", "quarantined", "pinned", "sessions", "bad_requests",
    "reconnects", "timeouts", "remote_hits", "remote_bytes")


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in STATS_FIELDS]

    def as_dict(self):
        return {name: int(getattr(self, name)) for name in STATS_FIELDS}


class LibraryNotFound(OSError):
    pass


_lib = None
_lib_path = None
_lib_lock = threading.Lock()


def _candidates():
    env = os.environ.get("PEERCACHE_LIB")
    if env:
        yield "PEERCACHE_LIB", env
    yield "next to the package", os.path.join(PKG_DIR, "libpeercache.so")
    build = os.environ.get("PEERCACHE_BUILD", "build")
    yield "source checkout", os.path.join(CHECKOUT_ROOT, build, "libpeercache.so")
    yield "loader path", "libpeercache.so.1"
    yield "loader path", "libpeercache.so"
    found = ctypes.util.find_library("peercache")
    if found:
        yield "ctypes.util.find_library", found


def _declare(lib):
    c_int_p = ctypes.POINTER(ctypes.c_int)
    keys_t = ctypes.POINTER(ctypes.c_char_p)
    lib.pc_client_connect.restype = ctypes.c_void_p
    lib.pc_client_connect.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint, c_int_p]
    lib.pc_client_close.restype = None
    lib.pc_client_close.argtypes = [ctypes.c_void_p]
    lib.pc_client_set_timeout.restype = None
    lib.pc_client_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.pc_client_batch_set.restype = ctypes.c_int
    lib.pc_client_batch_set.argtypes = [
        ctypes.c_void_p, ctypes.c_uint, keys_t, ctypes.POINTER(Iov),
        ctypes.POINTER(ctypes.c_uint), ctypes.c_uint32, c_int_p]
    lib.pc_client_batch_get.restype = ctypes.c_int
    lib.pc_client_batch_get.argtypes = [
        ctypes.c_void_p, ctypes.c_uint, keys_t, ctypes.POINTER(Iov),
        ctypes.POINTER(ctypes.c_uint), c_int_p]
    lib.pc_client_batch_exists.restype = ctypes.c_int
    lib.pc_client_batch_exists.argtypes = [ctypes.c_void_p, ctypes.c_uint, keys_t,
                                           ctypes.POINTER(ctypes.c_uint8)]
    lib.pc_client_delete.restype = ctypes.c_int
    lib.pc_client_delete.argtypes = [ctypes.c_void_p, ctypes.c_uint, keys_t, c_int_p]
    lib.pc_client_clear.restype = ctypes.c_long
    lib.pc_client_clear.argtypes = [ctypes.c_void_p]
    lib.pc_client_stats.restype = ctypes.c_int
    lib.pc_client_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(Stats)]
    lib.pc_client_ping.restype = ctypes.c_int
    lib.pc_client_ping.argtypes = [ctypes.c_void_p]
    lib.pc_client_version.restype = ctypes.c_char_p
    lib.pc_client_version.argtypes = []


def load():
    """Load libpeercache once; raise LibraryNotFound naming every place tried."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        tried = []
        for where, path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append("%s: %s (no such file)" % (where, path))
                continue
            try:
                lib = ctypes.CDLL(path)
                _declare(lib)
            except (OSError, AttributeError) as e:
                tried.append("%s: %s (%s)" % (where, path, e))
                continue
            _lib, _lib_path = lib, path
            return lib
        raise LibraryNotFound(
            "peercache: cannot load libpeercache. Build it with `make` (build/libpeercache.so), "
            "then either set PEERCACHE_LIB=/path/to/libpeercache.so, keep the package in the "
            "source checkout (pip install -e client/python) or put libpeercache.so next to the "
            "peercache package, or install it on the loader path (make install; ldconfig or "
            "LD_LIBRARY_PATH). Tried:\n  " + "\n  ".join(tried))


def library_path():
    load()
    return _lib_path


def strerror(rc):
    if rc is None:
        return "?"
    if rc < 0:
        try:
            return "%s (%s)" % (errno.errorcode.get(-rc, str(-rc)), os.strerror(-rc))
        except ValueError:
            return str(rc)
    return str(rc)


def key_array(keys_bytes):
    arr = (ctypes.c_char_p * max(1, len(keys_bytes)))()
    for i, k in enumerate(keys_bytes):
        arr[i] = k
    return arr


class Client:
    """One libpeercache session (one namespace). Thread-safe like the library.

    Every method returns the library's int (>= 0 or -errno); nothing raises
    except connect().
    """

    def __init__(self, socket_path, ns, timeout_ms):
        lib = load()
        err = ctypes.c_int(0)
        sp = socket_path.encode() if socket_path else None
        nsb = ns.encode() if isinstance(ns, str) else ns
        h = lib.pc_client_connect(sp, nsb, int(timeout_ms), ctypes.byref(err))
        if not h:
            raise ConnectionError(err.value or -errno.ECONNREFUSED,
                                  "connect %s: %s" % (socket_path, strerror(err.value)))
        self._lib = lib
        self.handle = h
        self.socket_path = socket_path
        self.ns = ns

    def close(self):
        h, self.handle = self.handle, None
        if h:
            self._lib.pc_client_close(h)

    def set_timeout(self, ms):
        if self.handle:
            self._lib.pc_client_set_timeout(self.handle, int(ms))

    def batch_set(self, keys, iov, niov, prefix_depth, results):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_batch_set(self.handle, len(keys), key_array(keys), iov, niov,
                                             int(prefix_depth), results)

    def batch_get(self, keys, iov, niov, results):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_batch_get(self.handle, len(keys), key_array(keys), iov, niov,
                                             results)

    def batch_exists(self, keys, present=None):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_batch_exists(self.handle, len(keys), key_array(keys), present)

    def delete(self, keys, results=None):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_delete(self.handle, len(keys), key_array(keys), results)

    def clear(self):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_clear(self.handle)

    def stats(self):
        if not self.handle:
            return None
        st = Stats()
        rc = self._lib.pc_client_stats(self.handle, ctypes.byref(st))
        return st.as_dict() if rc == 0 else None

    def ping(self):
        if not self.handle:
            return -errno.ENOTCONN
        return self._lib.pc_client_ping(self.handle)
