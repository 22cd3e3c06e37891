"""PeerCacheStore's v2 interface (hybrid models, SGLang PR #20457) against a real engine.

Standard library only. A KV HostPool plus a sidecar pool (sglang_harness.SidecarPool) whose
get_page_buffer_meta gives 2 pointers per page, as SWA / multi-buffer pools do (bug 14 of
the original: it assumed one pointer per page and mapped pointers onto the wrong pages).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sglang_harness as h  # noqa: E402
from test_store import LOG, StoreTest, diff  # noqa: E402

HC = h.hicache_module()
KV = HC.PoolName.KV
SIDE = "swa"
ALL = HC.PoolHitPolicy.ALL_PAGES
TRAIL = HC.PoolHitPolicy.TRAILING_PAGES


class V2Test(StoreTest):
    def v2_store(self, kv, side, **kw):
        s = self.store(None, **kw)
        if kv is not None:
            s.register_mem_host_pool_v2(kv, KV)
        if side is not None:
            s.register_mem_host_pool_v2(side, SIDE)
        return s

    def sub(self, idx, pool, pages):
        """The host indices of the given page positions of idx."""
        P = pool.page_size
        return h.Indices(t for i in pages for t in idx[i * P:(i + 1) * P])

    def test_roundtrip_kv_and_two_pointer_sidecar(self):
        """batch_set_v2 of KV + a 2-pointer sidecar on one store; another store of the same
        rank sees the prefix in batch_exists_v2 and batch_get_v2 fills both pools byte for
        byte into other slots."""
        n = 12
        wkv, wside = h.HostPool(), h.SidecarPool()
        w = self.v2_store(wkv, wside)
        hashes = self.pages(n, 21)
        kidx, sidx = wkv.alloc_pages(n, shuffle=True), wside.alloc_pages(n, shuffle=True)
        want_kv = wkv.fill(kidx, [("kv", i) for i in range(n)])
        want_side = wside.fill(sidx, [("side", i) for i in range(n)])
        res = w.batch_set_v2([h.pool_transfer(KV, hashes, kidx),
                              h.pool_transfer(SIDE, hashes, sidx)])
        self.assertEqual(res, {KV: [True] * n, SIDE: [True] * n}, LOG.tail())

        rkv, rside = h.HostPool(), h.SidecarPool()
        r = self.v2_store(rkv, rside)
        got = r.batch_exists_v2(hashes, [h.pool_transfer(SIDE, hashes, hit_policy=ALL)])
        self.assertEqual(got.kv_hit_pages, n, LOG.tail())
        self.assertEqual(got.extra_pool_hit_pages, {KV: n, SIDE: n})
        kidx2, sidx2 = rkv.alloc_pages(n, shuffle=True), rside.alloc_pages(n, shuffle=True)
        rkv.clear_pages(kidx2, 0x5A)
        rside.clear_pages(sidx2, 0x5A)
        res = r.batch_get_v2([h.pool_transfer(KV, hashes, kidx2),
                              h.pool_transfer(SIDE, hashes, sidx2)])
        self.assertEqual(res, {KV: [True] * n, SIDE: [True] * n}, LOG.tail())
        self.assertEqual(diff(rkv.pages(kidx2), want_kv), [])
        self.assertEqual(diff(rside.pages(sidx2), want_side), [])

    def test_sidecar_keys_do_not_collide_with_kv(self):
        """Sidecar pages alone are not KV pages (v1 and v2 KV lookups miss), and KV pages
        alone are not sidecar pages."""
        n = 4
        kv, side = h.HostPool(), h.SidecarPool()
        s = self.v2_store(kv, side)
        a, b = self.pages(n, 31), self.pages(n, 32)
        sidx = side.alloc_pages(n)
        side.fill(sidx, range(n))
        self.assertEqual(s.batch_set_v2([h.pool_transfer(SIDE, a, sidx)]), {SIDE: [True] * n})
        self.assertEqual(s.batch_exists(a), 0)
        self.assertEqual(s.batch_exists_v2(a).kv_hit_pages, 0)
        kidx = kv.alloc_pages(n)
        kv.fill(kidx, range(n))
        self.assertEqual(h.backup(s, kv, b, kidx), n)
        got = s.batch_exists_v2(b, [h.pool_transfer(SIDE, b[-1:], hit_policy=TRAIL)])
        self.assertEqual((got.kv_hit_pages, got.extra_pool_hit_pages), (0, {KV: n}))

    def test_exists_policies_with_gaps(self):
        """ALL_PAGES stops at the first missing sidecar page; TRAILING_PAGES gives the
        longest prefix whose last len(keys) pages are all present, never more."""
        n = 10
        kv, side = h.HostPool(), h.SidecarPool()
        s = self.v2_store(kv, side)
        hashes = self.pages(n, 41)
        kidx, sidx = kv.alloc_pages(n), side.alloc_pages(n)
        kv.fill(kidx, range(n))
        side.fill(sidx, range(n))
        have = [0, 1, 2, 5, 6, 8]  # sidecar gaps at 3, 4, 7, 9
        self.assertEqual(h.backup(s, kv, hashes, kidx), n, LOG.tail())
        res = s.batch_set_v2([h.pool_transfer(SIDE, [hashes[i] for i in have],
                                              self.sub(sidx, side, have))])
        self.assertEqual(res, {SIDE: [True] * len(have)}, LOG.tail())

        def ask(keys, policy, trailing):
            r = s.batch_exists_v2(keys, [h.pool_transfer(SIDE, keys[:trailing],
                                                         hit_policy=policy)])
            return r.kv_hit_pages, r.extra_pool_hit_pages.get(SIDE, 0)

        self.assertEqual(ask(hashes, ALL, 1), (3, 3))
        self.assertEqual(ask(hashes, TRAIL, 1), (9, 9))   # page 8 present, 9 not
        self.assertEqual(ask(hashes, TRAIL, 2), (7, 7))   # pages 5, 6
        self.assertEqual(ask(hashes, TRAIL, 3), (3, 3))   # pages 0, 1, 2
        self.assertEqual(ask(hashes, TRAIL, 4), (3, 3))   # prefix 3 < 4: all of it
        self.assertEqual(ask(hashes[3:], TRAIL, 1), (6, 6))  # keys 3..9: page 8 = 6th
        # The reference fold, for every window and KV prefix.
        for kv_n in range(1, n + 1):
            for tr in range(1, n + 1):
                want = 0
                for plen in range(kv_n, 0, -1):
                    if all(i in have for i in range(max(0, plen - tr), plen)):
                        want = plen
                        break
                self.assertEqual(ask(hashes[:kv_n], TRAIL, tr), (want, want),
                                 (kv_n, tr))

    def test_exists_kv_gap_bounds_every_pool(self):
        n = 8
        kv, side = h.HostPool(), h.SidecarPool()
        s = self.v2_store(kv, side)
        hashes = self.pages(n, 51)
        kidx, sidx = kv.alloc_pages(n), side.alloc_pages(n)
        kv.fill(kidx, range(n))
        side.fill(sidx, range(n))
        kv_have = [0, 1, 2, 3, 4, 5, 7]  # KV gap at 6
        s.batch_set_v2([h.pool_transfer(KV, [hashes[i] for i in kv_have],
                                        self.sub(kidx, kv, kv_have)),
                        h.pool_transfer(SIDE, hashes[:2] + hashes[5:], self.sub(
                            sidx, side, [0, 1, 5, 6, 7]))])
        r = s.batch_exists_v2(hashes, [h.pool_transfer(SIDE, hashes[:2], hit_policy=TRAIL)])
        # KV prefix 6; window of 2 ending at 6 = pages 4, 5: 4 missing; ... pages 0, 1.
        self.assertEqual((r.kv_hit_pages, r.extra_pool_hit_pages), (2, {KV: 6, SIDE: 2}))
        r = s.batch_exists_v2(hashes, [h.pool_transfer(SIDE, hashes[:1], hit_policy=TRAIL)])
        self.assertEqual((r.kv_hit_pages, r.extra_pool_hit_pages), (6, {KV: 6, SIDE: 6}))

    def test_uneven_pointer_count_is_all_false(self):
        """A sidecar pool whose pointer count does not divide by the keys (or gives another
        number of segments per page than at registration): every page False, nothing
        raised, no page read into or stored from the wrong place."""
        n = 2
        side = h.SidecarPool()
        s = self.v2_store(h.HostPool(), side)
        hashes = self.pages(n, 61)
        sidx = side.alloc_pages(n)
        side.fill(sidx, range(n))
        for extra in (1, 2, 3):
            with self.subTest(extra=extra):
                side.extra_ptrs = extra   # 5, 6, 7 pointers for 2 pages
                self.assertEqual(s.batch_set_v2([h.pool_transfer(SIDE, hashes, sidx)]),
                                 {SIDE: [False] * n})
                self.assertEqual(s.batch_get_v2([h.pool_transfer(SIDE, hashes, sidx)]),
                                 {SIDE: [False] * n})
        side.extra_ptrs = 0
        r = s.batch_exists_v2(hashes, [h.pool_transfer(SIDE, hashes, hit_policy=ALL)])
        self.assertEqual(r.extra_pool_hit_pages.get(SIDE, 0), 0)
        # Now stored correctly; a bad read must leave the slots untouched.
        want = side.pages(sidx)
        self.assertEqual(s.batch_set_v2([h.pool_transfer(SIDE, hashes, sidx)]),
                         {SIDE: [True] * n})
        side.clear_pages(sidx, 0x77)
        blank = side.pages(sidx)
        side.extra_ptrs = 1
        self.assertEqual(s.batch_get_v2([h.pool_transfer(SIDE, hashes, sidx)]),
                         {SIDE: [False] * n})
        self.assertEqual(side.pages(sidx), blank)
        side.extra_ptrs = 0
        self.assertEqual(s.batch_get_v2([h.pool_transfer(SIDE, hashes, sidx)]),
                         {SIDE: [True] * n})
        self.assertEqual(side.pages(sidx), want)
        # Host indices that do not cover the keys, an unregistered pool, garbage.
        self.assertEqual(s.batch_get_v2([h.pool_transfer(SIDE, hashes, sidx[:4])]),
                         {SIDE: [False] * n})
        self.assertEqual(s.batch_set_v2([h.pool_transfer("mamba", hashes, sidx)]),
                         {"mamba": [False] * n})
        r = s.batch_exists_v2(hashes, [h.pool_transfer("mamba", hashes)])
        self.assertEqual(r.kv_hit_pages, 0)
        self.assertEqual(s.batch_get_v2([h.pool_transfer(SIDE, hashes, None)]),
                         {SIDE: [False] * n})
        self.assertEqual(s.batch_get_v2(None), {})

    def test_v1_and_v2_kv_pages_interoperate(self):
        """v1 backup -> v2 exists/get, and v2 set -> v1 query/prefetch, byte for byte: a
        v2 KV transfer uses the same keys and bytes as v1."""
        n = 9
        wpool, rpool = h.HostPool(layout="page_first"), h.HostPool(layout="page_first")
        w = self.store(wpool)
        r = self.store(None, is_page_first_layout=True)
        r.register_mem_host_pool_v2(rpool, KV)
        a = self.pages(n, 71)
        widx = wpool.alloc_pages(n, shuffle=True)
        want = wpool.fill(widx, [("a", i) for i in range(n)])
        self.assertEqual(h.backup(w, wpool, a, widx), n, LOG.tail())
        self.assertEqual(r.batch_exists_v2(a).kv_hit_pages, n, LOG.tail())
        ridx = rpool.alloc_pages(n, shuffle=True)
        rpool.clear_pages(ridx, 0x33)
        self.assertEqual(r.batch_get_v2([h.pool_transfer(KV, a, ridx)]), {KV: [True] * n})
        self.assertEqual(diff(rpool.pages(ridx), want), [])

        b = self.pages(n, 72)
        want_b = rpool.fill(ridx, [("b", i) for i in range(n)])
        self.assertEqual(r.batch_set_v2([h.pool_transfer(KV, b, ridx)]), {KV: [True] * n})
        widx2 = wpool.alloc_pages(n, shuffle=True)
        wpool.clear_pages(widx2, 0x44)
        self.assertEqual(h.prefetch(w, wpool, b, widx2), (n, n), LOG.tail())
        self.assertEqual(diff(wpool.pages(widx2), want_b), [])


if __name__ == "__main__":
    unittest.main()
