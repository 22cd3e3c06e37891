"""A stand-in for the SGLang side of HiCache, for testing peercache.store.PeerCacheStore.

Standard library only (ctypes); nothing here needs torch or numpy. What it plays, after
../shared/reference/sglang-hicache-contract.md:

- HostPool: SGLang's MHA/MLA host KV pool (memory_pool_host.py) with the method surface a
  storage backend touches: ``kv_buffer`` (data_ptr/numel/element_size), ``layout``,
  ``page_size``, ``dtype`` (with ``itemsize``), ``layer_num``, ``start_layer/end_layer``,
  ``size_per_token``, ``get_page_buffer_meta(host_indices) -> (ptr_list, size_list)`` written
  as SGLang writes it (contract section 3) for MHA and MLA in layer_first, page_first and
  page_first_direct, and ``get_data_page`` / ``get_dummy_flat_data_page`` /
  ``set_from_flat_data_page`` for the generic path. The memory is real (one ctypes buffer), so a
  backend that copies into the pointers it is given really fills the pool.
- make_config: an SGLang-style HiCacheStorageConfig (SGLang's own when importable, else
  peercache._hicache's stand-in), fields SGLang's version lacks left out.
- chain_hashes: SGLang's chained SHA-256 page keys.
- backup / prefetch: the call sequences of contract section 4 (128-page slices; backup stops
  on the first False; prefetch queries batch_exists 128 keys at a time stopping at a short
  batch, then reads with batch_get_v1 counting only the leading Trues).
- EngineCluster: real engine processes on loopback, the way tests/integration starts them.
"""

import ctypes
import dataclasses
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                                  # client/python
ROOT = os.path.abspath(os.path.join(PKG_ROOT, "..", ".."))       # the checkout
BUILD = os.path.join(ROOT, os.environ.get("PEERCACHE_BUILD", "build"))
ENGINE = os.path.join(BUILD, "peercache")
LIB = os.path.join(BUILD, "libpeercache.so")

# The package finds the build through these (peercache/_lib.py, peercache/engine.py).
os.environ.setdefault("PEERCACHE_LIB", LIB)
os.environ.setdefault("PEERCACHE_BIN", ENGINE)
if PKG_ROOT not in sys.path:
    sys.path.insert(0, PKG_ROOT)

STORAGE_BATCH = 128  # SGLang's storage_batch_size: pages per IO call

# ----------------------------------------------------------------------------- dtypes, buffers


class DType:
    """Enough of a torch.dtype: str() like torch's, and itemsize."""

    def __init__(self, name, itemsize):
        self.name = name
        self.itemsize = itemsize

    def __str__(self):
        return "torch." + self.name

    __repr__ = __str__


BF16 = DType("bfloat16", 2)
FP16 = DType("float16", 2)
FP8 = DType("float8_e4m3fn", 1)


class CTensor:
    """A flat, contiguous CPU "tensor" over ctypes memory: what a backend may look at
    (data_ptr, numel, element_size, shape, is_contiguous, device) plus byte helpers."""

    def __init__(self, nbytes, dtype=BF16, shape=None, fill=None):
        self.dtype = dtype
        self.nbytes = int(nbytes)
        self._mem = (ctypes.c_char * max(1, self.nbytes))()
        self.shape = tuple(shape) if shape else (self.nbytes // dtype.itemsize,)
        self.device = "cpu"
        if fill is not None:
            ctypes.memset(self._mem, fill, self.nbytes)

    def data_ptr(self):
        return ctypes.addressof(self._mem)

    def numel(self):
        return self.nbytes // self.dtype.itemsize

    def element_size(self):
        return self.dtype.itemsize

    def is_contiguous(self):
        return True

    def flatten(self):
        return self

    def cpu(self):
        return self

    def tobytes(self, off=0, n=None):
        n = self.nbytes - off if n is None else n
        return ctypes.string_at(self.data_ptr() + off, n)

    def write(self, off, data):
        assert 0 <= off and off + len(data) <= self.nbytes
        ctypes.memmove(self.data_ptr() + off, data, len(data))


class Indices(list):
    """Host indices: SGLang passes a torch int64 tensor; its get_page_buffer_meta calls
    .tolist(), and slicing gives another tensor."""

    def tolist(self):
        return list(self)

    def __getitem__(self, i):
        r = list.__getitem__(self, i)
        return Indices(r) if isinstance(i, slice) else r

    def numel(self):
        return len(self)


def pattern(seed, n):
    """n deterministic bytes for a seed (any str/int/tuple)."""
    base = hashlib.sha256(repr(seed).encode()).digest()
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(base + i.to_bytes(4, "little")).digest()
        i += 1
    return bytes(out[:n])


# ----------------------------------------------------------------------------- host pool

MHA_LAYOUTS = ("layer_first", "page_first", "page_first_direct")
MLA_LAYOUTS = ("layer_first", "page_first", "page_first_direct")


class HostPool:
    """SGLang's MHATokenToKVPoolHost / MLATokenToKVPoolHost, over real memory.

    MHA kv_buffer dims (K = [0], V = [1]): layer_first (2, L, size, H, D); page_first
    (2, size, L, H, D); page_first_direct (2, page_num, L, P, H, D).
    MLA (C = kv_lora_rank + qk_rope_head_dim): layer_first (L, size, 1, C); page_first
    (size, L, 1, C); page_first_direct (page_num, L, P, 1, C).
    """

    def __init__(self, mla=False, layout="layer_first", page_size=4, layer_num=4, head_num=2,
                 head_dim=16, kv_lora_rank=48, qk_rope_head_dim=16, dtype=BF16, num_pages=64,
                 start_layer=0):
        if layout not in (MLA_LAYOUTS if mla else MHA_LAYOUTS):
            raise ValueError("layout %r" % layout)
        self.is_mla = mla
        self.layout = layout
        self.page_size = page_size
        self.layer_num = layer_num
        self.start_layer = start_layer
        self.end_layer = start_layer + layer_num
        self.dtype = dtype
        self.page_num = num_pages
        self.size = num_pages * page_size
        isz = dtype.itemsize
        if mla:
            self.kv_lora_rank = kv_lora_rank
            self.qk_rope_head_dim = qk_rope_head_dim
            self.kv_lora_rank_plus_rope = kv_lora_rank + qk_rope_head_dim
            self.row = self.kv_lora_rank_plus_rope * isz     # one token of one layer
            self.size_per_token = self.row * layer_num
            nbytes = self.size * layer_num * self.row
            shape = {"layer_first": (layer_num, self.size, 1, self.kv_lora_rank_plus_rope),
                     "page_first": (self.size, layer_num, 1, self.kv_lora_rank_plus_rope),
                     "page_first_direct": (num_pages, layer_num, page_size, 1,
                                           self.kv_lora_rank_plus_rope)}[layout]
        else:
            self.head_num = head_num
            self.head_dim = head_dim
            self.row = head_num * head_dim * isz             # one token of one layer, K or V
            self.size_per_token = 2 * self.row * layer_num
            nbytes = 2 * self.size * layer_num * self.row
            shape = {"layer_first": (2, layer_num, self.size, head_num, head_dim),
                     "page_first": (2, self.size, layer_num, head_num, head_dim),
                     "page_first_direct": (2, num_pages, layer_num, page_size, head_num,
                                           head_dim)}[layout]
        self.kv_buffer = CTensor(nbytes, dtype, shape, fill=0)
        self.page_bytes = self.size_per_token * page_size
        self._free = list(range(num_pages))

    # -- what SGLang's pool offers

    def get_size_per_token(self):
        return self.size_per_token

    def alloc_pages(self, n, shuffle=False):
        """Host indices (token slots) for n pages, page-aligned, not necessarily in order."""
        if n > len(self._free):
            raise MemoryError("pool has %d free pages, want %d" % (len(self._free), n))
        pages = self._free[:n]
        del self._free[:n]
        if shuffle:
            random.Random(n).shuffle(pages)
        return Indices(t for p in pages for t in range(p * self.page_size,
                                                       (p + 1) * self.page_size))

    def free(self, host_indices):
        for i in range(0, len(host_indices), self.page_size):
            self._free.append(host_indices[i] // self.page_size)

    def get_page_buffer_meta(self, indices):
        """SGLang's code path, transcribed: (ptr_list, size_list)."""
        assert len(indices) % self.page_size == 0
        indices = indices.tolist() if hasattr(indices, "tolist") else list(indices)
        base = self.kv_buffer.data_ptr()
        isz = self.dtype.itemsize
        L, P = self.layer_num, self.page_size
        ptrs = []
        if self.is_mla:
            C = self.kv_lora_rank_plus_rope
            if self.layout == "layer_first":
                for index in range(0, len(indices), P):
                    for layer_id in range(L):
                        ptrs.append(base + indices[index] * C * isz + layer_id * self.size * C
                                    * isz)
                element_size = isz * P * C
            else:  # page_first, page_first_direct
                for index in range(0, len(indices), P):
                    ptrs.append(base + indices[index] * L * C * isz)
                element_size = L * isz * P * C
        else:
            H, D = self.head_num, self.head_dim
            v_offset = L * self.size * H * D * isz
            if self.layout == "layer_first":
                for index in range(0, len(indices), P):
                    for layer_id in range(L):
                        k_ptr = base + indices[index] * H * D * isz + layer_id * self.size * H \
                            * D * isz
                        ptrs.append(k_ptr)
                        ptrs.append(k_ptr + v_offset)
                element_size = isz * P * H * D
            else:  # page_first, page_first_direct
                for index in range(0, len(indices), P):
                    k_ptr = base + indices[index] * L * H * D * isz
                    ptrs.append(k_ptr)
                    ptrs.append(k_ptr + v_offset)
                element_size = L * isz * P * H * D
        return ptrs, [element_size] * len(ptrs)

    def _row_offsets(self, index):
        """Byte offsets of the rows of the page starting at token `index`, in the order of
        the flattened page slice (kv_buffer order)."""
        P, L, size = self.page_size, self.layer_num, self.size
        p, r = self.row, []
        page = index // P
        if self.is_mla:
            if self.layout == "layer_first":     # (L, size, 1, C)[:, t0:t0+P]
                r = [(l * size + index + s) * p for l in range(L) for s in range(P)]
            elif self.layout == "page_first":    # (size, L, 1, C)[t0:t0+P]
                r = [((index + s) * L + l) * p for s in range(P) for l in range(L)]
            else:                                # (page_num, L, P, 1, C)[pg]
                r = [((page * L + l) * P + s) * p for l in range(L) for s in range(P)]
        else:
            if self.layout == "layer_first":     # (2, L, size, H, D)[:, :, t0:t0+P]
                r = [((kv * L + l) * size + index + s) * p
                     for kv in range(2) for l in range(L) for s in range(P)]
            elif self.layout == "page_first":    # (2, size, L, H, D)[:, t0:t0+P]
                r = [((kv * size + index + s) * L + l) * p
                     for kv in range(2) for s in range(P) for l in range(L)]
            else:                                # (2, page_num, L, P, H, D)[:, pg]
                r = [(((kv * self.page_num + page) * L + l) * P + s) * p
                     for kv in range(2) for l in range(L) for s in range(P)]
        return r

    def get_data_page(self, index, flat=True):
        """The page at token `index` as a flat contiguous copy (SGLang: slice .flatten())."""
        t = CTensor(self.page_bytes, self.dtype)
        o = 0
        for off in self._row_offsets(index):
            ctypes.memmove(t.data_ptr() + o, self.kv_buffer.data_ptr() + off, self.row)
            o += self.row
        return t

    def get_dummy_flat_data_page(self):
        return CTensor(self.page_bytes, self.dtype, fill=0)

    def set_from_flat_data_page(self, index, data_page):
        if hasattr(data_page, "data_ptr"):
            src = ctypes.string_at(data_page.data_ptr(),
                                   data_page.numel() * data_page.element_size())
        else:
            src = bytes(data_page)
        assert len(src) == self.page_bytes, "flat page of %d bytes, want %d" % (
            len(src), self.page_bytes)
        o = 0
        for off in self._row_offsets(index):
            self.kv_buffer.write(off, src[o:o + self.row])
            o += self.row

    # -- test helpers: pages by their first token index, in flat order

    def fill_page(self, index, seed):
        data = pattern(seed, self.page_bytes)
        self.set_from_flat_data_page(index, data)
        return data

    def read_page(self, index):
        return self.get_data_page(index).tobytes()

    def fill(self, host_indices, seeds):
        """Fill the pages of host_indices with pattern(seeds[i]); returns the bytes."""
        P = self.page_size
        return [self.fill_page(host_indices[i * P], s) for i, s in enumerate(seeds)]

    def clear_pages(self, host_indices, byte=0):
        P = self.page_size
        blank = bytes([byte]) * self.page_bytes
        for i in range(0, len(host_indices), P):
            self.set_from_flat_data_page(host_indices[i], blank)

    def pages(self, host_indices):
        P = self.page_size
        return [self.read_page(host_indices[i]) for i in range(0, len(host_indices), P)]


# ----------------------------------------------------------------------------- config, keys


def hicache_module():
    from peercache import _hicache
    return _hicache


def make_config(tp_rank=0, tp_size=1, pp_rank=0, pp_size=1, attn_cp_rank=0, attn_cp_size=1,
                is_mla_model=False, is_page_first_layout=False, model_name="test/model",
                enable_storage_metrics=False, extra_config=None, **more):
    """An SGLang-style HiCacheStorageConfig; fields this SGLang lacks are left out."""
    cls = hicache_module().HiCacheStorageConfig
    want = dict(tp_rank=tp_rank, tp_size=tp_size, pp_rank=pp_rank, pp_size=pp_size,
                attn_cp_rank=attn_cp_rank, attn_cp_size=attn_cp_size,
                is_mla_model=is_mla_model, enable_storage_metrics=enable_storage_metrics,
                is_page_first_layout=is_page_first_layout, model_name=model_name,
                extra_config=dict(extra_config or {}), **more)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in want.items() if k in names})


def extra_info(prefix_keys=None):
    return hicache_module().HiCacheStorageExtraInfo(prefix_keys=prefix_keys)


def chain_hashes(tokens, page_size, prior_hash=None):
    """SGLang's page keys: h_i = sha256(bytes.fromhex(h_{i-1}) || tokens as uint32 LE),
    64-char lowercase hex; only full pages."""
    out = []
    last = prior_hash
    for i in range(0, len(tokens) - len(tokens) % page_size, page_size):
        h = hashlib.sha256()
        if last is not None:
            h.update(bytes.fromhex(last))
        for t in tokens[i:i + page_size]:
            h.update(int(t).to_bytes(4, "little"))
        last = h.hexdigest()
        out.append(last)
    return out


def random_tokens(n, seed):
    rnd = random.Random(seed)
    return [rnd.randrange(0, 128000) for _ in range(n)]


# ----------------------------------------------------------------------------- call sequences


def backup(store, pool, hashes, host_indices, prefix_keys=None):
    """backup_thread: batch_set_v1 in 128-page slices; stops on the first slice that is not
    all True. Returns the number of pages backed up (a whole number of slices)."""
    P = pool.page_size
    done = 0
    prefix = list(prefix_keys or [])
    for i in range(0, len(hashes), STORAGE_BATCH):
        keys = hashes[i:i + STORAGE_BATCH]
        res = store.batch_set_v1(keys, host_indices[i * P:(i + len(keys)) * P],
                                 extra_info(prefix + hashes[:i]))
        if not all(res):
            break
        done += len(keys)
    return done


def query(store, hashes, prefix_keys=None):
    """prefetch_thread._storage_hit_query: batch_exists 128 keys at a time, stopping at the
    first batch that hits short. Returns the number of leading pages hit."""
    hits = 0
    prefix = list(prefix_keys or [])
    for i in range(0, len(hashes), STORAGE_BATCH):
        keys = hashes[i:i + STORAGE_BATCH]
        n = store.batch_exists(keys, extra_info(prefix + hashes[:i]))
        hits += n
        if n < len(keys):
            break
    return hits


def page_transfer(store, pool, hashes, host_indices, prefix_keys=None):
    """prefetch_io_aux._page_transfer: batch_get_v1 per 128-page slice, counting only the
    leading Trues; a short slice ends the transfer. Returns pages completed."""
    P = pool.page_size
    done = 0
    prefix = list(prefix_keys or [])
    for i in range(0, len(hashes), STORAGE_BATCH):
        keys = hashes[i:i + STORAGE_BATCH]
        res = store.batch_get_v1(keys, host_indices[i * P:(i + len(keys)) * P],
                                 extra_info(prefix + hashes[:i]))
        lead = 0
        for r in res:
            if r is not True:
                break
            lead += 1
        done += lead
        if lead < len(keys):
            break
    return done


def prefetch(store, pool, hashes, host_indices, prefix_keys=None):
    """The whole prefetch: query, then transfer the hit pages. Returns (hit, completed)."""
    hit = query(store, hashes, prefix_keys)
    if hit == 0:
        return 0, 0
    P = pool.page_size
    done = page_transfer(store, pool, hashes[:hit], host_indices[:hit * P], prefix_keys)
    return hit, done


def generic_set(store, pool, hashes, host_indices):
    """cache_controller._generic_page_set."""
    P = pool.page_size
    data = [pool.get_data_page(host_indices[i * P]) for i in range(len(hashes))]
    return store.batch_set(hashes, data)


def generic_get(store, pool, hashes, host_indices):
    """cache_controller._generic_page_get: returns the pages completed."""
    P = pool.page_size
    dummy = [pool.get_dummy_flat_data_page() for _ in hashes]
    page_data = store.batch_get(hashes, dummy)
    if page_data is None:
        return 0
    done = 0
    for i in range(len(hashes)):
        if page_data[i] is None:
            break
        pool.set_from_flat_data_page(host_indices[i * P], page_data[i])
        done += 1
    return done


def run_threads(fns, timeout=120):
    """Run the callables on concurrent threads; returns their results, or raises the first
    exception one of them raised."""
    results = [None] * len(fns)
    errors = [None] * len(fns)
    start = threading.Barrier(len(fns))

    def body(i):
        try:
            start.wait(30)
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors[i] = e

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        if t.is_alive():
            raise AssertionError("a thread did not finish within %d s" % timeout)
    for e in errors:
        if e is not None:
            raise e
    return results


# ----------------------------------------------------------------------------- engines

READY_TIMEOUT = 60
STOP_TIMEOUT = 30
HOSTS = ["127.0.0.%d" % (i + 1) for i in range(4)]
_counter = [0]


def child_env():
    """The engines' environment: under an ASan run Python has libasan preloaded with leak
    checks off (tests/run.sh); engines get neither (PEERCACHE_CHILD_ASAN_OPTIONS)."""
    env = dict(os.environ)
    if "PEERCACHE_CHILD_ASAN_OPTIONS" in env:
        env.pop("LD_PRELOAD", None)
        env["ASAN_OPTIONS"] = env.pop("PEERCACHE_CHILD_ASAN_OPTIONS")
        if not env["ASAN_OPTIONS"]:
            del env["ASAN_OPTIONS"]
    return env


def free_port():
    """A TCP port free on every test loopback address, below the embedded default 31998
    and outside the usual ephemeral range."""
    rnd = random.Random()
    for _ in range(200):
        port = rnd.randrange(20000, 31000)
        socks = []
        try:
            for h in HOSTS:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


class EngineProc:
    """One engine process; its merged output is collected by a thread."""

    def __init__(self, name, sock, settings, lcores="0"):
        self.name = name
        self.sock = sock
        self.settings = settings
        self.lcores = lcores
        self.lines = []
        self.proc = None
        self.start()

    def start(self):
        _counter[0] += 1
        args = [ENGINE, "-l", self.lcores, "--no-huge", "--in-memory", "--no-pci",
                "--no-telemetry", "--file-prefix",
                "pc_py_%d_%d" % (os.getpid(), _counter[0]), "--"]
        for k, v in self.settings.items():
            args += ["--set", "%s=%s" % (k, v)]
        self.ready = threading.Event()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=child_env())
        self.reader = threading.Thread(target=self._read, args=(self.proc, self.ready),
                                       daemon=True)
        self.reader.start()

    def _read(self, proc, ready):
        for line in proc.stdout:
            self.lines.append(line)
            if "peercache.engine: ready:" in line:
                ready.set()

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

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(10)
        if not self.proc.stdout.closed:
            self.proc.stdout.close()

    def stop(self):
        """SIGTERM; returns the exit code (0 for a clean stop)."""
        if not self.alive():
            self.kill()
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "no exit within %d s of SIGTERM" % STOP_TIMEOUT
            self.proc.wait()
        self.kill()
        return rc


class EngineCluster:
    """Engines on 127.0.0.(i+1) sharing one discovery_addr on a free port; sockets in a
    temporary directory."""

    def __init__(self, request_timeout=1.0, segment="64mb"):
        self.tmp = tempfile.TemporaryDirectory(prefix="pc_py_")
        self.port = free_port()
        self.discovery = "127.0.0.1:%d" % self.port
        self.request_timeout = request_timeout
        self.segment = segment
        self.engines = []

    def settings(self, i, **over):
        host = HOSTS[i]
        d = {
            "discovery_addr": self.discovery,
            "meta_bind_host": host,
            "control_bind_host": host,
            "rdma_bind_host": host,
            "local_hostname": host,
            "control_port": "0",
            "node_id": "py%d" % (i + 1),
            "heartbeat_interval": "0.2",
            "member_ttl": "1.0",
            "request_timeout": str(self.request_timeout),
            "engine_socket": os.path.join(self.tmp.name, "e%d.sock" % (i + 1)),
            "global_segment_size": self.segment,
            "idle_policy": "adaptive",
            "protocol": "tcp",
            "disk_enabled": "false",
            "metrics_bind_host": host,
            "metrics_port": "0",
        }
        d.update({k: str(v) for k, v in over.items()})
        return d

    def start(self, i, wait=True, **over):
        s = self.settings(i, **over)
        e = EngineProc("e%d" % (i + 1), s["engine_socket"], s)
        self.engines.append(e)
        if wait and not e.wait_ready():
            raise AssertionError("engine %s never ready:\n%s" % (e.name, e.output()[-3000:]))
        return e

    def start_many(self, n, **over):
        es = [self.start(i, wait=False, **over) for i in range(n)]
        for e in es:
            if not e.wait_ready():
                raise AssertionError("engine %s never ready:\n%s" % (e.name,
                                                                    e.output()[-3000:]))
        return es

    def extra(self, e, **more):
        """extra_config for a store on engine e (no autostart)."""
        d = {"backend_name": "peercache", "module_path": "peercache.store",
             "class_name": "PeerCacheStore", "interface_v1": 1,
             "engine_socket": e.sock, "discovery_addr": self.discovery, "autostart": False,
             "request_timeout": 2.0}
        d.update(more)
        return d

    def close(self):
        """Stop every engine (SIGTERM); returns [(name, problem)] for unclean ones."""
        bad = []
        for e in self.engines:
            if e.alive():
                rc = e.stop()
                if rc != 0:
                    bad.append((e.name, "exit %s" % rc))
            else:
                e.kill()
            if "AddressSanitizer" in e.output() or "runtime error:" in e.output():
                bad.append((e.name, "sanitizer report"))
        if bad:
            for e in self.engines:
                sys.stderr.write("\n----- %s log, last lines -----\n%s" % (
                    e.name, e.output()[-3000:]))
        self.tmp.cleanup()
        return bad


# ----------------------------------------------------------------------------- v2 sidecar pool


class SidecarPool:
    """A hybrid model's extra host pool (SWA / Mamba-style states) for the v2 interface:
    each page lives in `len(seg_bytes)` separate buffers (e.g. conv and SSM state), so
    get_page_buffer_meta gives that many pointers per page (sizes may differ). `extra_ptrs`
    appends that many stray pointers to every answer (a pool whose pointer count does not
    map onto pages)."""

    def __init__(self, page_size=4, seg_bytes=(96, 160), num_pages=64, dtype=BF16):
        self.page_size = page_size
        self.seg_bytes = tuple(seg_bytes)
        self.page_num = num_pages
        self.size = num_pages * page_size
        self.dtype = dtype
        self.layout = "sidecar"
        self.page_bytes = sum(self.seg_bytes)
        self.buffers = [CTensor(b * num_pages, dtype, fill=0) for b in self.seg_bytes]
        self.extra_ptrs = 0
        self._free = list(range(num_pages))

    def alloc_pages(self, n, shuffle=False):
        if n > len(self._free):
            raise MemoryError("pool has %d free pages, want %d" % (len(self._free), n))
        pages = self._free[:n]
        del self._free[:n]
        if shuffle:
            random.Random(n + 1).shuffle(pages)
        return Indices(t for p in pages for t in range(p * self.page_size,
                                                       (p + 1) * self.page_size))

    def get_page_buffer_meta(self, indices):
        assert len(indices) % self.page_size == 0
        indices = indices.tolist() if hasattr(indices, "tolist") else list(indices)
        ptrs, sizes = [], []
        for i in range(0, len(indices), self.page_size):
            page = indices[i] // self.page_size
            for buf, b in zip(self.buffers, self.seg_bytes):
                ptrs.append(buf.data_ptr() + page * b)
                sizes.append(b)
        for _ in range(self.extra_ptrs):
            ptrs.append(self.buffers[0].data_ptr())
            sizes.append(self.seg_bytes[0])
        return ptrs, sizes

    def fill_page(self, index, seed):
        page = index // self.page_size
        data = pattern(seed, self.page_bytes)
        o = 0
        for buf, b in zip(self.buffers, self.seg_bytes):
            buf.write(page * b, data[o:o + b])
            o += b
        return data

    def read_page(self, index):
        page = index // self.page_size
        return b"".join(buf.tobytes(page * b, b) for buf, b in zip(self.buffers, self.seg_bytes))

    def fill(self, host_indices, seeds):
        P = self.page_size
        return [self.fill_page(host_indices[i * P], s) for i, s in enumerate(seeds)]

    def clear_pages(self, host_indices, byte=0):
        P = self.page_size
        for i in range(0, len(host_indices), P):
            page = host_indices[i] // P
            for buf, b in zip(self.buffers, self.seg_bytes):
                buf.write(page * b, bytes([byte]) * b)

    def pages(self, host_indices):
        P = self.page_size
        return [self.read_page(host_indices[i]) for i in range(0, len(host_indices), P)]


def pool_transfer(name, keys, host_indices=None, hit_policy=None):
    """A PoolTransfer (SGLang's when importable, else the stand-in)."""
    m = hicache_module()
    kw = dict(name=name, keys=list(keys), host_indices=host_indices)
    if hit_policy is not None:
        kw["hit_policy"] = hit_policy
    return m.PoolTransfer(**kw)
