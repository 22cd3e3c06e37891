"""peercache.store.PeerCacheStore against real engines, driven the way SGLang drives it.

Standard library only. sglang_harness.py plays SGLang: a host pool over real memory with
SGLang's get_page_buffer_meta / get_data_page / set_from_flat_data_page, SGLang-style storage
configs, chained SHA-256 page keys and the backup / prefetch call sequences of the contract
(../shared/reference/sglang-hicache-contract.md sections 3-5). Engines run as in
tests/integration: loopback addresses, a free discovery port, --no-huge --in-memory, the
adaptive idle policy, small segments; every one is stopped (SIGTERM) at the end and an unclean
exit or a sanitizer report fails the class.

Bounds are liveness bounds (a call returns within a few request_timeouts), never speed checks.
"""

import ctypes
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sglang_harness as h  # noqa: E402  (sets PEERCACHE_LIB / PEERCACHE_BIN, sys.path)

from peercache.store import PeerCacheStore  # noqa: E402

STORE_TIMEOUT = 2.0                 # the stores' request_timeout, seconds
CALL_BOUND = 3 * STORE_TIMEOUT + 2  # a call that takes longer than this hung
VISIBLE = 30.0                      # deadline for a page to become visible through a peer


class _Capture(logging.Handler):
    """Keeps the package's last log lines (shown in failure messages), prints nothing."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())
        del self.lines[:-200]

    def tail(self, n=20):
        return "\n".join(self.lines[-n:])


LOG = _Capture()
_pclog = logging.getLogger("peercache")
_pclog.addHandler(LOG)
_pclog.setLevel(logging.INFO)
_pclog.propagate = False


def until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def diff(got, want):
    """Which pages differ (indices), for messages that do not dump bytes."""
    if len(got) != len(want):
        return "%d pages, want %d" % (len(got), len(want))
    return [i for i, (a, b) in enumerate(zip(got, want)) if a != b]


class StoreTest(unittest.TestCase):
    """Engines per class (ENGINES of them), stores per test (closed after it)."""

    ENGINES = 1

    @classmethod
    def setUpClass(cls):
        for path in (h.ENGINE, h.LIB):
            if not os.path.exists(path):
                raise unittest.SkipTest("build %s first: make" % path)
        cls.cluster = h.EngineCluster(request_timeout=1.0)
        try:
            cls.engines = cls.cluster.start_many(cls.ENGINES) if cls.ENGINES else []
        except BaseException:
            cls.cluster.close()
            raise

    @classmethod
    def tearDownClass(cls):
        bad = cls.cluster.close()
        if bad:
            raise AssertionError("engines that did not stop cleanly: %s" % bad)

    def setUp(self):
        self.stores = []
        self.model = "m/" + self.id().rsplit(".", 1)[-1]

    def tearDown(self):
        for s in self.stores:
            s.close()

    def store(self, pool=None, engine=None, model=None, extra=None, **cfg):
        e = engine if engine is not None else self.engines[0]
        ex = self.cluster.extra(e, request_timeout=STORE_TIMEOUT)
        ex.update(extra or {})
        if pool is not None:
            cfg.setdefault("is_mla_model", pool.is_mla)
            cfg.setdefault("is_page_first_layout", pool.layout == "page_first")
        conf = h.make_config(model_name=model or self.model, extra_config=ex, **cfg)
        s = PeerCacheStore(conf, {})
        self.stores.append(s)
        if pool is not None:
            s.register_mem_pool_host(pool)
        return s

    def pages(self, n, seed, page_size=4):
        return h.chain_hashes(h.random_tokens(n * page_size, seed), page_size)

    def roundtrip(self, writer, wpool, reader, rpool, n, seed, wseeds=None):
        """writer backs up n pages; reader prefetches them into fresh slots. Returns
        (written bytes, read bytes, (hit, completed))."""
        hashes = self.pages(n, seed, wpool.page_size)
        widx = wpool.alloc_pages(n, shuffle=True)
        want = wpool.fill(widx, wseeds or [(seed, i) for i in range(n)])
        self.assertEqual(h.backup(writer, wpool, hashes, widx), n, LOG.tail())
        ridx = rpool.alloc_pages(n, shuffle=True)
        rpool.clear_pages(ridx, 0x5A)
        got_counts = h.prefetch(reader, rpool, hashes, ridx)
        return want, rpool.pages(ridx), got_counts


class HarnessSelfTest(unittest.TestCase):
    """The harness's pool: get_page_buffer_meta covers exactly the bytes of each page."""

    def test_page_buffer_meta_covers_the_page(self):
        for mla in (False, True):
            for layout in h.MHA_LAYOUTS:
                with self.subTest(mla=mla, layout=layout):
                    pool = h.HostPool(mla=mla, layout=layout, num_pages=8)
                    base = pool.kv_buffer.data_ptr()
                    idx = pool.alloc_pages(3, shuffle=True)
                    ptrs, sizes = pool.get_page_buffer_meta(idx)
                    per = (1 if mla else 2) * (pool.layer_num if layout == "layer_first" else 1)
                    self.assertEqual(len(ptrs), 3 * per)
                    self.assertEqual(len(sizes), len(ptrs))
                    for p in range(3):
                        segs = sorted((ptrs[p * per + j] - base, sizes[p * per + j])
                                      for j in range(per))
                        got = set()
                        for off, n in segs:
                            got.update(range(off, off + n))
                        want = set()
                        for off in pool._row_offsets(idx[p * pool.page_size]):
                            want.update(range(off, off + pool.row))
                        self.assertEqual(sum(n for _, n in segs), pool.page_bytes)
                        self.assertEqual(got, want)

    def test_chain_hashes(self):
        toks = list(range(8))
        hs = h.chain_hashes(toks, 4)
        import hashlib
        h0 = hashlib.sha256(b"".join(t.to_bytes(4, "little") for t in range(4))).hexdigest()
        h1 = hashlib.sha256(bytes.fromhex(h0) + b"".join(
            t.to_bytes(4, "little") for t in range(4, 8))).hexdigest()
        self.assertEqual(hs, [h0, h1])
        self.assertEqual(h.chain_hashes(toks[4:], 4, prior_hash=h0), [h1])


class Layouts(StoreTest):
    def test_every_layout_roundtrips(self):
        """MHA and MLA in layer_first, page_first and page_first_direct: what one store backs
        up, a second store of the same rank prefetches byte for byte (zero-copy v1)."""
        for mla in (False, True):
            for layout in h.MHA_LAYOUTS:
                with self.subTest(mla=mla, layout=layout):
                    model = "%s/%s/%s" % (self.model, "mla" if mla else "mha", layout)
                    wpool = h.HostPool(mla=mla, layout=layout)
                    rpool = h.HostPool(mla=mla, layout=layout)
                    w = self.store(wpool, model=model)
                    r = self.store(rpool, model=model)
                    want, got, counts = self.roundtrip(w, wpool, r, rpool, 20, hash(model))
                    self.assertEqual(counts, (20, 20), LOG.tail())
                    self.assertEqual(diff(got, want), [])

    def test_prefix_over_many_slices(self):
        """300 pages (three 128-page slices), a prefetch of a longer chain stops at the end
        of what is stored; dedup of a re-backup counts as success."""
        pool = h.HostPool(layout="page_first", num_pages=400, layer_num=2, head_dim=8)
        s = self.store(pool)
        tokens = h.random_tokens(340 * 4, 7)
        hashes = h.chain_hashes(tokens, 4)
        idx = pool.alloc_pages(300)
        want = pool.fill(idx, range(300))
        self.assertEqual(h.backup(s, pool, hashes[:300], idx), 300, LOG.tail())
        # Backing the same prefix up again (SGLang re-backs up recomputed prefixes).
        self.assertEqual(h.backup(s, pool, hashes[:300], idx), 300, LOG.tail())
        pool.clear_pages(idx, 0x11)
        self.assertEqual(h.query(s, hashes), 300)
        ridx = idx + pool.alloc_pages(40)
        hit, done = h.prefetch(s, pool, hashes, ridx)
        self.assertEqual((hit, done), (300, 300))
        self.assertEqual(diff(pool.pages(idx), want), [])


class Ranks(StoreTest):
    def test_mha_tp2_each_rank_reads_its_own(self):
        """MHA TP=2: two ranks, the same hashes, different bytes; each reads its own shard
        (zero-copy and generic paths)."""
        for path in ("v1", "generic"):
            with self.subTest(path=path):
                model = self.model + "/" + path
                pools = [h.HostPool(layout="layer_first") for _ in range(2)]
                stores = [self.store(pools[r], model=model, tp_rank=r, tp_size=2,
                                     extra={"interface_v1": int(path == "v1")})
                          for r in range(2)]
                hashes = self.pages(12, 42)
                idx = [p.alloc_pages(12, shuffle=True) for p in pools]
                want = [pools[r].fill(idx[r], [("rank", r, i) for i in range(12)])
                        for r in range(2)]
                self.assertNotEqual(want[0], want[1])
                for r in range(2):
                    if path == "v1":
                        self.assertEqual(h.backup(stores[r], pools[r], hashes, idx[r]), 12)
                    else:
                        self.assertIs(h.generic_set(stores[r], pools[r], hashes, idx[r]), True,
                                      LOG.tail())
                for r in range(2):
                    pools[r].clear_pages(idx[r], 0x33)
                for r in range(2):
                    if path == "v1":
                        self.assertEqual(h.prefetch(stores[r], pools[r], hashes, idx[r]),
                                         (12, 12))
                    else:
                        self.assertEqual(stores[r].batch_exists(hashes), 12)
                        self.assertEqual(h.generic_get(stores[r], pools[r], hashes, idx[r]), 12)
                    self.assertEqual(diff(pools[r].pages(idx[r]), want[r]), [],
                                     "rank %d read other bytes than it wrote" % r)

    def test_mla_tp2_rank0_writes_rank1_reads(self):
        """MLA TP=2: only rank 0 backs up (SGLang's backup_skip); rank 1 finds and reads the
        same bytes (zero-copy and generic)."""
        for path in ("v1", "generic"):
            with self.subTest(path=path):
                model = self.model + "/" + path
                pools = [h.HostPool(mla=True, layout="page_first") for _ in range(2)]
                # SGLang takes the generic path for KV only without interface_v1.
                stores = [self.store(pools[r], model=model, tp_rank=r, tp_size=2,
                                     extra={"interface_v1": int(path == "v1")})
                          for r in range(2)]
                hashes = self.pages(10, 43)
                widx = pools[0].alloc_pages(10, shuffle=True)
                want = pools[0].fill(widx, [("mla", i) for i in range(10)])
                if path == "v1":
                    self.assertEqual(h.backup(stores[0], pools[0], hashes, widx), 10)
                else:
                    self.assertIs(h.generic_set(stores[0], pools[0], hashes, widx), True)
                ridx = pools[1].alloc_pages(10, shuffle=True)
                # Every rank runs the query; both must agree (SGLang takes the minimum).
                self.assertEqual([h.query(s, hashes) for s in stores], [10, 10])
                if path == "v1":
                    self.assertEqual(h.page_transfer(stores[1], pools[1], hashes, ridx), 10)
                else:
                    self.assertEqual(h.generic_get(stores[1], pools[1], hashes, ridx), 10)
                self.assertEqual(diff(pools[1].pages(ridx), want), [])

    def test_two_models_never_read_each_other(self):
        """Two models in one cluster, same token hashes: neither sees the other's pages."""
        pools = {m: h.HostPool(layout="page_first") for m in ("A", "B")}
        stores = {m: self.store(pools[m], model=self.model + "/" + m) for m in ("A", "B")}
        hashes = self.pages(8, 44)
        idx = {m: pools[m].alloc_pages(8) for m in ("A", "B")}
        want_a = pools["A"].fill(idx["A"], [("A", i) for i in range(8)])
        self.assertEqual(h.backup(stores["A"], pools["A"], hashes, idx["A"]), 8)
        self.assertTrue(generic_ok(stores["A"], pools["A"], hashes[:2], idx["A"][:8]))
        # B finds nothing, by either path, and its slots stay untouched.
        pools["B"].clear_pages(idx["B"], 0x77)
        before = pools["B"].pages(idx["B"])
        self.assertEqual(stores["B"].batch_exists(hashes), 0)
        self.assertIs(stores["B"].exists(hashes[0]), False)
        self.assertEqual(stores["B"].batch_get_v1(hashes, idx["B"]), [False] * 8)
        self.assertEqual(h.generic_get(stores["B"], pools["B"], hashes, idx["B"]), 0)
        self.assertEqual(pools["B"].pages(idx["B"]), before)
        # B writes its own bytes under the same hashes; each reads its own.
        want_b = pools["B"].fill(idx["B"], [("B", i) for i in range(8)])
        self.assertEqual(h.backup(stores["B"], pools["B"], hashes, idx["B"]), 8)
        for m, want in (("A", want_a), ("B", want_b)):
            pools[m].clear_pages(idx[m])
            self.assertEqual(h.prefetch(stores[m], pools[m], hashes, idx[m]), (8, 8))
            self.assertEqual(diff(pools[m].pages(idx[m]), want), [], m)


def generic_ok(store, pool, hashes, idx):
    return h.generic_set(store, pool, hashes, idx)


class Generic(StoreTest):
    def test_generic_path(self):
        """batch_set/batch_get/get/set/exists with SGLang's flat pages, every layout."""
        for mla in (False, True):
            for layout in h.MHA_LAYOUTS:
                with self.subTest(mla=mla, layout=layout):
                    pool = h.HostPool(mla=mla, layout=layout)
                    s = self.store(pool, model="%s/%s/%s" % (self.model, mla, layout),
                                   extra={"interface_v1": 0})
                    hashes = self.pages(6, 45)
                    idx = pool.alloc_pages(6, shuffle=True)
                    want = pool.fill(idx, [("g", mla, layout, i) for i in range(6)])
                    self.assertIs(h.generic_set(s, pool, hashes[:5], idx), True, LOG.tail())
                    self.assertIs(s.set(hashes[5], pool.get_data_page(idx[5 * 4])), True)
                    self.assertEqual(s.batch_exists(hashes), 6)
                    self.assertIs(s.exists(hashes[3]), True)
                    pool.clear_pages(idx)
                    self.assertEqual(h.generic_get(s, pool, hashes, idx), 6)
                    self.assertEqual(diff(pool.pages(idx), want), [])
                    dst = pool.get_dummy_flat_data_page()
                    self.assertIs(s.get(hashes[2], dst), dst)
                    self.assertEqual(dst.tobytes(), want[2])
                    # bytearray and memoryview destinations are filled in place too.
                    ba = bytearray(pool.page_bytes)
                    self.assertIs(s.get(hashes[1], ba), ba)
                    self.assertEqual(bytes(ba), want[1])
                    missing = self.pages(1, 46)[0]
                    self.assertIsNone(s.get(missing, pool.get_dummy_flat_data_page()))
                    self.assertIs(s.exists(missing), False)
                    res = s.batch_get([hashes[0], missing], [pool.get_dummy_flat_data_page()
                                                             for _ in range(2)])
                    self.assertEqual(len(res), 2)
                    self.assertIsNotNone(res[0])
                    self.assertIsNone(res[1])

    def test_draft_pages_generic_in_v1_mode(self):
        """Speculative draft KV: "d:"+hash through the generic path even with interface_v1;
        found by batch_exists and exists, read by get, and kept apart from the target KV."""
        pool = h.HostPool(layout="page_first")
        s = self.store(pool)  # interface_v1 = 1
        hashes = self.pages(3, 57)
        idx = pool.alloc_pages(3)
        want = pool.fill(idx, [("draft", i) for i in range(3)])
        dkeys = ["d:" + k for k in hashes]
        self.assertIs(h.generic_set(s, pool, dkeys, idx), True, LOG.tail())
        self.assertEqual(s.batch_exists(dkeys), 3)
        self.assertIs(s.exists(dkeys[1]), True)
        self.assertEqual(s.batch_exists(hashes), 0, "draft pages seen as target KV")
        dst = pool.get_dummy_flat_data_page()
        self.assertIs(s.get(dkeys[2], dst), dst)
        self.assertEqual(dst.tobytes(), want[2])

    def test_bytes_destination_is_not_a_hit(self):
        """Bug 15: a bytes destination cannot be filled, so it is a miss, not a hit."""
        pool = h.HostPool(layout="page_first")
        s = self.store(pool)
        key = self.pages(1, 47)[0]
        page = h.pattern("bytes-dst", pool.page_bytes)
        self.assertIs(s.set(key, bytearray(page)), True)
        dst = bytes(pool.page_bytes)
        self.assertIsNone(s.get(key, dst))
        self.assertEqual(s.batch_get([key], [bytes(pool.page_bytes)]), [None])
        self.assertEqual(dst, bytes(pool.page_bytes))
        # The page is there: a writable destination gets it.
        ba = bytearray(pool.page_bytes)
        self.assertIs(s.get(key, ba), ba)
        self.assertEqual(bytes(ba), page)

    def test_other_size_is_a_miss_not_a_partial_copy(self):
        """A page stored with another size: smaller and larger destinations are misses and
        are left untouched."""
        pool = h.HostPool(layout="page_first")
        s = self.store(pool, extra={"interface_v1": 0})
        key = self.pages(1, 48)[0]
        self.assertIs(s.set(key, bytearray(h.pattern("size", 2048))), True)
        for n in (1024, 2047, 2049, 4096):
            with self.subTest(dest=n):
                dst = bytearray(b"\xa5" * n)
                self.assertIsNone(s.get(key, dst))
                self.assertEqual(dst, bytearray(b"\xa5" * n), "destination was written")
        ba = bytearray(2048)
        self.assertIs(s.get(key, ba), ba)

    def test_other_layout_is_a_miss(self):
        """Pages backed up from a page_first pool are a miss for a layer_first pool of the
        same model and rank (and for an MLA pool, or another page size); the reader's slots
        are not touched."""
        wpool = h.HostPool(layout="page_first")
        w = self.store(wpool)
        hashes = self.pages(6, 49)
        widx = wpool.alloc_pages(6)
        wpool.fill(widx, range(6))
        self.assertEqual(h.backup(w, wpool, hashes, widx), 6)
        for other in (h.HostPool(layout="layer_first"), h.HostPool(layout="page_first_direct"),
                      h.HostPool(layout="page_first", page_size=2, layer_num=8),
                      h.HostPool(layout="page_first", dtype=h.FP16)):
            with self.subTest(layout=other.layout, page_size=other.page_size,
                              dtype=str(other.dtype)):
                r = self.store(other)
                ridx = other.alloc_pages(6)
                other.clear_pages(ridx, 0x3C)
                before = other.pages(ridx)
                keys = hashes if other.page_size == 4 else self.pages(6, 49, other.page_size)
                self.assertEqual(r.batch_exists(keys), 0)
                self.assertEqual(r.batch_get_v1(keys, ridx), [False] * 6)
                self.assertEqual(other.pages(ridx), before, "a miss wrote into the pool")


class ReturnTypes(StoreTest):
    def test_exact_return_types(self):
        """batch_exists: an int in [0, len] counting the leading run; v1: a list of bool of
        len(keys); a gap truncates the count; empty calls."""
        pool = h.HostPool(layout="layer_first")
        s = self.store(pool)
        hashes = self.pages(6, 50)
        idx = pool.alloc_pages(6)
        pool.fill(idx, range(6))
        P = pool.page_size
        r1 = s.batch_set_v1(hashes[:2], idx[:2 * P])
        r2 = s.batch_set_v1(hashes[3:5], idx[3 * P:5 * P], h.extra_info(hashes[:3]))
        for r, n in ((r1, 2), (r2, 2)):
            self.assertIs(type(r), list)
            self.assertEqual(len(r), n)
            self.assertTrue(all(x is True for x in r), r)
        n = s.batch_exists(hashes)
        self.assertIs(type(n), int)
        self.assertEqual(n, 2)
        self.assertEqual(s.batch_exists(hashes[3:5]), 2)
        self.assertEqual(s.batch_exists(hashes[2:]), 0)
        got = s.batch_get_v1(hashes, idx)
        self.assertIs(type(got), list)
        self.assertEqual(len(got), 6)
        self.assertTrue(all(type(x) is bool for x in got), got)
        self.assertEqual(got[:3], [True, True, False])
        self.assertEqual(got[5], False)
        self.assertEqual(h.page_transfer(s, pool, hashes, idx), 2)
        # Empty calls.
        self.assertEqual(s.batch_exists([]), 0)
        self.assertIs(type(s.batch_exists([])), int)
        self.assertEqual(s.batch_get_v1([], h.Indices()), [])
        self.assertEqual(s.batch_set_v1([], h.Indices()), [])
        self.assertIs(type(s.exists(hashes[0])), bool)
        self.assertIs(type(s.batch_set([hashes[0]], [pool.get_data_page(idx[0])])), bool)
        self.assertIsNone(s.get_stats())
        self.assertIsNone(s.clear())
        self.assertEqual(s.batch_exists(hashes), 0, "clear() left pages")

    def test_storage_metrics(self):
        pool = h.HostPool(layout="page_first")
        s = self.store(pool, enable_storage_metrics=True)
        hashes = self.pages(4, 51)
        idx = pool.alloc_pages(4)
        pool.fill(idx, range(4))
        self.assertEqual(h.backup(s, pool, hashes, idx), 4)
        self.assertEqual(h.prefetch(s, pool, hashes, idx), (4, 4))
        m = s.get_stats()
        self.assertIsNotNone(m)
        for name in ("prefetch_pgs", "backup_pgs", "prefetch_bandwidth", "backup_bandwidth"):
            self.assertTrue(hasattr(m, name), name)
        self.assertEqual(sum(m.backup_pgs), 4)
        self.assertEqual(sum(m.prefetch_pgs), 4)

    def test_three_threads_concurrently(self):
        """SGLang's backup, prefetch-query and prefetch-IO threads on one store at once:
        nothing raises, every answer well-formed, and the bytes are right afterwards."""
        pool = h.HostPool(layout="layer_first", num_pages=520, layer_num=2, head_dim=8)
        s = self.store(pool)
        hashes = self.pages(256, 52)
        widx = pool.alloc_pages(256, shuffle=True)
        want = pool.fill(widx, range(256))
        ridx = pool.alloc_pages(256)
        stop = threading.Event()
        bad = []

        def backup():
            try:
                return h.backup(s, pool, hashes, widx)
            finally:
                stop.set()

        def querier():
            n = 0
            while not stop.is_set():
                c = s.batch_exists(hashes[:128])
                if type(c) is not int or not 0 <= c <= 128:
                    bad.append(("batch_exists", c))
                n += 1
            return n

        def reader():
            n = 0
            while not stop.is_set():
                r = s.batch_get_v1(hashes[:128], ridx[:128 * pool.page_size])
                if type(r) is not list or len(r) != 128 or any(type(x) is not bool for x in r):
                    bad.append(("batch_get_v1", r))
                n += 1
            return n

        done, _, _ = h.run_threads([backup, querier, reader])
        self.assertEqual(done, 256, LOG.tail())
        self.assertEqual(bad[:3], [])
        pool.clear_pages(ridx)
        self.assertEqual(h.prefetch(s, pool, hashes, ridx), (256, 256))
        self.assertEqual(diff(pool.pages(ridx), want), [])


class CrossNode(StoreTest):
    ENGINES = 2

    def test_prefill_on_a_decode_on_b(self):
        """PD: the prefill rank's store on engine A backs up; the decode rank's store on
        engine B finds the pages through the directory (polled against a deadline) and
        reads them byte for byte, zero-copy and generic."""
        a, b = self.engines
        for mla, layout in ((False, "layer_first"), (True, "page_first")):
            with self.subTest(mla=mla, layout=layout):
                model = "%s/%s" % (self.model, layout)
                ppool = h.HostPool(mla=mla, layout=layout)
                dpool = h.HostPool(mla=mla, layout=layout)
                prefill = self.store(ppool, engine=a, model=model)
                decode = self.store(dpool, engine=b, model=model)
                hashes = self.pages(16, 53)
                pidx = ppool.alloc_pages(16, shuffle=True)
                want = ppool.fill(pidx, [("pd", mla, i) for i in range(16)])
                self.assertEqual(h.backup(prefill, ppool, hashes, pidx), 16, LOG.tail())
                seen = until(lambda: decode.batch_exists(hashes) == 16, VISIBLE, 0.2)
                self.assertTrue(seen, "B never saw A's pages: batch_exists %d\n%s" % (
                    decode.batch_exists(hashes), LOG.tail()))
                didx = dpool.alloc_pages(16, shuffle=True)
                dpool.clear_pages(didx, 0x42)
                self.assertEqual(h.prefetch(decode, dpool, hashes, didx), (16, 16), LOG.tail())
                self.assertEqual(diff(dpool.pages(didx), want), [])
                st = decode.engine_stats()
                if st is not None:
                    self.assertGreaterEqual(st.get("remote_hits", 0), 16)

    def test_generic_cross_node(self):
        a, b = self.engines
        ppool = h.HostPool(layout="page_first")
        dpool = h.HostPool(layout="page_first")
        prefill = self.store(ppool, engine=a, extra={"interface_v1": 0})
        decode = self.store(dpool, engine=b, extra={"interface_v1": 0})
        hashes = self.pages(8, 54)
        pidx = ppool.alloc_pages(8)
        want = ppool.fill(pidx, [("gx", i) for i in range(8)])
        self.assertIs(h.generic_set(prefill, ppool, hashes, pidx), True)
        self.assertTrue(until(lambda: decode.batch_exists(hashes) == 8, VISIBLE, 0.2),
                        LOG.tail())
        didx = dpool.alloc_pages(8)
        self.assertEqual(h.generic_get(decode, dpool, hashes, didx), 8)
        self.assertEqual(diff(dpool.pages(didx), want), [])


class EngineFailure(StoreTest):
    def _timed(self, what, fn):
        t0 = time.monotonic()
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001
            self.fail("%s raised %r with the engine dead" % (what, e))
        dt = time.monotonic() - t0
        self.assertLess(dt, CALL_BOUND, "%s took %.1f s with the engine dead" % (what, dt))
        return r

    def test_engine_hung(self):
        """A stopped (SIGSTOP) engine: calls return a miss within their deadline instead of
        blocking SGLang's IO threads; after SIGCONT the store works again."""
        e = self.engines[0]
        pool = h.HostPool(layout="page_first")
        s = self.store(pool)
        hashes = self.pages(4, 58)
        idx = pool.alloc_pages(4)
        want = pool.fill(idx, range(4))
        self.assertEqual(h.backup(s, pool, hashes, idx), 4)
        e.proc.send_signal(signal.SIGSTOP)
        try:
            self.assertEqual(self._timed("batch_exists", lambda: s.batch_exists(hashes)), 0)
            self.assertEqual(self._timed("batch_get_v1", lambda: s.batch_get_v1(hashes, idx)),
                             [False] * 4)
            self.assertEqual(self._timed("batch_set_v1", lambda: s.batch_set_v1(hashes, idx)),
                             [False] * 4)
        finally:
            e.proc.send_signal(signal.SIGCONT)
        pool.clear_pages(idx)
        self.assertTrue(until(lambda: h.prefetch(s, pool, hashes, idx) == (4, 4), 20.0, 0.3),
                        "the store never recovered after SIGCONT:\n" + LOG.tail())
        self.assertEqual(diff(pool.pages(idx), want), [])

    def test_engine_killed_then_restarted(self):
        e = self.engines[0]
        pool = h.HostPool(layout="layer_first")
        s = self.store(pool)
        hashes = self.pages(8, 55)
        idx = pool.alloc_pages(8)
        want = pool.fill(idx, range(8))
        self.assertEqual(h.backup(s, pool, hashes, idx), 8)
        e.kill(signal.SIGKILL)
        P = pool.page_size
        dst = pool.get_dummy_flat_data_page()
        checks = [
            ("batch_exists", lambda: s.batch_exists(hashes), 0),
            ("batch_get_v1", lambda: s.batch_get_v1(hashes, idx), [False] * 8),
            ("batch_set_v1", lambda: s.batch_set_v1(hashes, idx), [False] * 8),
            ("exists", lambda: s.exists(hashes[0]), False),
            ("get", lambda: s.get(hashes[0], dst), None),
            ("batch_get", lambda: s.batch_get(hashes[:2], [dst, pool.get_dummy_flat_data_page()]),
             [None, None]),
            ("set", lambda: s.set(hashes[0], pool.get_data_page(idx[0])), False),
            ("batch_set", lambda: s.batch_set(hashes[:2], [pool.get_data_page(idx[i * P])
                                                           for i in range(2)]), False),
            ("clear", lambda: s.clear(), None),
            ("get_stats", lambda: s.get_stats(), None),
        ]
        for _ in range(2):  # the first call finds the dead session, the second reconnects
            for what, fn, want_r in checks:
                with self.subTest(what=what):
                    r = self._timed(what, fn)
                    self.assertEqual(r, want_r, "%s with the engine dead" % what)
                    self.assertIs(type(r), type(want_r))
        # Restarted at the same socket: the store reconnects by itself.
        e.start()
        self.assertTrue(e.wait_ready(), e.output()[-2000:])
        pool.fill(idx, range(8))

        def works():
            return h.backup(s, pool, hashes, idx) == 8

        self.assertTrue(until(works, 20.0, 0.3), "the store never reconnected:\n" + LOG.tail())
        pool.clear_pages(idx)
        self.assertEqual(h.prefetch(s, pool, hashes, idx), (8, 8))
        self.assertEqual(diff(pool.pages(idx), want), [])
        s.close()
        s.close()  # idempotent
        self.assertEqual(s.batch_exists(hashes), 0)  # closed: a miss, no exception


def _procs_with(text):
    """Pids whose command line contains text."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if text.encode() in f.read():
                    out.append(int(d))
        except OSError:
            continue
    return out


class Autostart(StoreTest):
    ENGINES = 0

    def test_two_stores_autostart_one_engine(self):
        """No engine at the socket: two stores built at once from a seed-style extra_config
        autostart exactly one engine, and both work through it."""
        tmp = tempfile.mkdtemp(prefix="pc_py_as_", dir=self.cluster.tmp.name)
        sock = os.path.join(tmp, "engine.sock")
        port = h.free_port()
        extra = {
            "backend_name": "peercache", "module_path": "peercache.store",
            "class_name": "PeerCacheStore", "interface_v1": 1, "autostart": True,
            "engine_socket": sock, "discovery_addr": "127.0.0.1:%d" % port,
            "local_hostname": "127.0.0.1", "meta_bind_host": "127.0.0.1",
            "control_bind_host": "127.0.0.1", "rdma_bind_host": "127.0.0.1",
            "metrics_bind_host": "127.0.0.1", "metrics_port": 0, "protocol": "tcp",
            "global_segment_size": "64mb", "disk_enabled": False, "idle_policy": "adaptive",
            "request_timeout": STORE_TIMEOUT, "autostart_lcores": "0",
            "autostart_stop_on_close": True,
        }
        pools = [h.HostPool(layout="page_first") for _ in range(2)]
        stores = []
        try:
            def make(i):
                def f():
                    conf = h.make_config(model_name=self.model, extra_config=dict(extra))
                    s = PeerCacheStore(conf, {})
                    s.register_mem_pool_host(pools[i])
                    return s
                return f

            stores = h.run_threads([make(0), make(1)], timeout=120)
            self.stores += stores
            pids = _procs_with(sock)
            self.assertEqual(len(pids), 1, "engines serving %s: %s\n%s" % (sock, pids,
                                                                          LOG.tail()))
            hashes = self.pages(6, 56)
            idx = pools[0].alloc_pages(6)
            want = pools[0].fill(idx, range(6))
            self.assertEqual(h.backup(stores[0], pools[0], hashes, idx), 6, LOG.tail())
            ridx = pools[1].alloc_pages(6)
            self.assertEqual(h.prefetch(stores[1], pools[1], hashes, ridx), (6, 6))
            self.assertEqual(diff(pools[1].pages(ridx), want), [])
        finally:
            for s in stores:
                s.close()
            self.stores = []
            # The starter stops its engine on close (autostart_stop_on_close); whatever is
            # left of the engines started for this socket is ended here, by pid.
            if not until(lambda: not _procs_with(sock), 15.0, 0.2):
                left = _procs_with(sock)
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self.fail("autostarted engine(s) %s still running after close" % left)
            try:
                with open(sock + ".log", errors="replace") as f:
                    log = f.read()
            except OSError:
                log = ""
            if "AddressSanitizer" in log or "runtime error:" in log:
                sys.stderr.write("\n----- autostarted engine log -----\n" + log[-3000:])
                self.fail("sanitizer report in the autostarted engine's log")


if __name__ == "__main__":
    unittest.main()
