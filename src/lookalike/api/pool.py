"""State the API's worker threads share: the backbone and two small LRU caches, all thread-safe.

One ONNX Runtime session serves every thread (``InferenceSession.run`` is thread-safe and
releases the GIL), so memory does not grow with the number of workers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class LruCache(Generic[V]):
    """A thread-safe least-recently-used mapping of at most ``size`` entries (0: keeps nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class SharedState:
    """The backbone (loaded once, on first use) and the query-vector and thumbnail caches."""

    def __init__(self, query_cache: int, thumbnail_cache: int) -> None:
        self.vectors: LruCache[Any] = LruCache(query_cache)
        """Reduced query vectors (d,) by (content hash, reducer fingerprint)."""
        self.thumbnails: LruCache[bytes] = LruCache(thumbnail_cache)
        """JPEG thumbnails by (image id, size)."""
        self._backbone: Any = None
        self._lock = threading.Lock()

    def backbone(self, lib: Any, threads: int) -> Any:
        """The library's backbone with ``threads`` intra-op threads, loaded by the first caller."""
        with self._lock:
            if self._backbone is None:
                self._backbone = lib.backbone(threads=threads)
            return self._backbone
