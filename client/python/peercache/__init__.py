"""PeerCache: SGLang HiCache L3 storage backend over the node's PeerCache engine.

``peercache.store.PeerCacheStore`` is the class SGLang's dynamic backend factory
loads (``"module_path": "peercache.store", "class_name": "PeerCacheStore"``).
Standard library only; libpeercache is reached through ctypes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
