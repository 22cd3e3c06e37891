"""SGLang's HiCache storage interface: the real one when SGLang is importable,
else a faithful stand-in with the same surface.

SGLang's dynamic backend factory checks ``issubclass(cls, HiCacheStorage)``
against ``sglang.srt.mem_cache.hicache_storage.HiCacheStorage``, so inside an
SGLang process ``PeerCacheStore`` must derive from the real class; elsewhere
(unit tests, tools) it derives from the stand-in below. ``HAVE_SGLANG`` says
which one was picked.

The dataclasses mirror SGLang's (fields added over time have defaults, so a
test can build a config with only what it needs).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, List, Optional

try:  # pragma: no cover - depends on the environment
    from sglang.srt.mem_cache.hicache_storage import (  # type: ignore
        HiCacheStorage,
        HiCacheStorageConfig,
        HiCacheStorageExtraInfo,
    )

    HAVE_SGLANG = True
except Exception:  # ImportError, or an SGLang that fails to import without a GPU
    HAVE_SGLANG = False

    @dataclass
    class HiCacheStorageConfig:
        tp_rank: int = 0
        tp_size: int = 1
        pp_rank: int = 0
        pp_size: int = 1
        attn_cp_rank: int = 0
        attn_cp_size: int = 1
        is_mla_model: bool = False
        enable_storage_metrics: bool = False
        is_page_first_layout: bool = False
        model_name: Optional[str] = None
        dp_rank: int = 0
        dp_size: int = 1
        tp_lcm_size: Optional[int] = None
        should_split_heads: bool = False
        extra_config: Optional[dict] = None

    @dataclass
    class HiCacheStorageExtraInfo:
        prefix_keys: Optional[List[str]] = None
        extra_info: Optional[dict] = None

    class HiCacheStorage(ABC):
        """Stand-in for sglang.srt.mem_cache.hicache_storage.HiCacheStorage."""

        def register_mem_pool_host(self, mem_pool_host):
            self.mem_pool_host = mem_pool_host

        def register_mem_host_pool_v2(self, host_pool, host_pool_name):
            if not hasattr(self, "registered_pools"):
                self.registered_pools = {}
            self.registered_pools[host_pool_name] = host_pool

        def batch_exists_v2(self, keys, pool_transfers=None, extra_info=None):
            raise NotImplementedError()

        def batch_get_v2(self, transfers, extra_info=None):
            raise NotImplementedError()

        def batch_set_v2(self, transfers, extra_info=None):
            raise NotImplementedError()

        def batch_get_v1(self, keys: List[str], host_indices: Any,
                         extra_info: Optional[HiCacheStorageExtraInfo] = None) -> List[bool]:
            raise NotImplementedError()

        def batch_set_v1(self, keys: List[str], host_indices: Any,
                         extra_info: Optional[HiCacheStorageExtraInfo] = None) -> List[bool]:
            raise NotImplementedError()

        @abstractmethod
        def get(self, key, target_location=None, target_sizes=None):
            pass

        @abstractmethod
        def batch_get(self, keys, target_locations=None, target_sizes=None):
            pass

        @abstractmethod
        def set(self, key, value=None, target_location=None, target_sizes=None) -> bool:
            pass

        @abstractmethod
        def batch_set(self, keys, values=None, target_locations=None, target_sizes=None) -> bool:
            pass

        @abstractmethod
        def exists(self, key) -> bool:
            pass

        def batch_exists(self, keys, extra_info=None) -> int:
            for i in range(len(keys)):
                if not self.exists(keys[i]):
                    return i
            return len(keys)

        def clear(self) -> None:
            pass

        def get_stats(self):
            return None


# The v2 (hybrid-model) descriptors, SGLang PR #20457 (2026-03). Imported on their own so
# that an SGLang older than v2 still gets the real base class and these stand-ins.
try:  # pragma: no cover - depends on the environment
    from sglang.srt.mem_cache.hicache_storage import (  # type: ignore
        PoolHitPolicy,
        PoolName,
        PoolTransfer,
        PoolTransferResult,
    )

    HAVE_SGLANG_V2 = True
except Exception:
    HAVE_SGLANG_V2 = False
    from enum import Enum

    class PoolName(str, Enum):
        """Stand-in for SGLang's PoolName (the well-known pool names)."""

        KV = "kv"
        MAMBA = "mamba"
        SWA = "swa"
        INDEXER = "indexer"
        DRAFT = "draft"
        DRAFT_INDEXER = "draft_indexer"
        DRAFT_SWA = "draft_swa"

        def __str__(self):
            return self.value

    class PoolHitPolicy(str, Enum):
        """Stand-in for SGLang's PoolHitPolicy (batch_exists_v2, per extra pool).

        ALL_PAGES: every page of [0, kv_hit) must exist; TRAILING_PAGES: only the last
        len(transfer.keys) pages of the prefix must exist."""

        ALL_PAGES = "all_pages"
        TRAILING_PAGES = "trailing_pages"

    @dataclass
    class PoolTransfer:
        """Stand-in for SGLang's PoolTransfer (host<->storage: name, keys, host_indices)."""

        name: Any
        host_indices: Any = None
        device_indices: Any = None
        keys: Optional[List[str]] = None
        hit_policy: Any = PoolHitPolicy.ALL_PAGES
        nodes_to_load: Optional[List[Any]] = None
        indices_from_pool: Any = None

    @dataclass
    class PoolTransferResult:
        """Stand-in for SGLang's PoolTransferResult."""

        kv_hit_pages: int
        extra_pool_hit_pages: dict

        @classmethod
        def empty(cls):
            return cls(0, {})

        def update_kv_hit_pages(self, kv_hit_pages):
            self.kv_hit_pages = max(self.kv_hit_pages, kv_hit_pages)

        def update_extra_pool_hit_pages(self, results):
            self.extra_pool_hit_pages.update(results)


try:  # pragma: no cover - depends on the environment
    from sglang.srt.metrics.collector import StorageMetrics  # type: ignore
except Exception:

    @dataclass
    class StorageMetrics:
        """Stand-in for sglang.srt.metrics.collector.StorageMetrics."""

        prefetch_pgs: List[int] = field(default_factory=list)
        backup_pgs: List[int] = field(default_factory=list)
        prefetch_bandwidth: List[float] = field(default_factory=list)
        backup_bandwidth: List[float] = field(default_factory=list)


__all__ = ["HAVE_SGLANG", "HAVE_SGLANG_V2", "HiCacheStorage", "HiCacheStorageConfig",
           "HiCacheStorageExtraInfo", "PoolHitPolicy", "PoolName", "PoolTransfer",
           "PoolTransferResult", "StorageMetrics"]
