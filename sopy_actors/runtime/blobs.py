"""The runtime's blob store for lazy state sections: the Store actor, with a per-process cache.

Sections are addressed by the SHA-256 of their JSON (`sopy_actors.state.lazy`), so a cached
blob can never be stale: the cache only saves the Store hop and the transfer for sections this
process read or wrote recently.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import ray

from sopy_actors.runtime.options import STORE_ACTOR
from sopy_actors.runtime.rayutil import wait
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["StoreBlobs"]

_CACHE_BYTES = 128 * 1024 * 1024
_TIMEOUT = 120.0  # seconds for one blob call: a 20 MB section is well under a second here


class StoreBlobs:
    """`BlobStore` over the Store actor of `namespace`; thread-safe (handlers run on threads).

    Args:
        namespace: the deployment's namespace.
        metrics: where to count `sopy_lazy_section_bytes_total` (None: not counted).
        cache_bytes: blob bytes kept in this process, least recently used dropped first.
    """

    def __init__(self, namespace: str, metrics: MetricsReporter | None = None, cache_bytes: int = _CACHE_BYTES) -> None:
        self._namespace = namespace
        self._metrics = metrics
        self._limit = cache_bytes
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        self._store: Any = None

    def get(self, digest: str) -> bytes | None:
        """The blob stored under `digest` (from the cache when it is there), or None."""
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self._cache.move_to_end(digest)
                return cached
        blob: bytes | None = wait(self._actor().blob.remote(digest), _TIMEOUT, what="the Store")
        if blob is not None:
            self._count("loaded", len(blob))
            self._keep({digest: blob})
        return blob

    def put(self, blobs: dict[str, bytes]) -> None:
        """Store blobs durably (returns once the Store has committed them) and cache them."""
        wait(self._actor().put_blobs.remote(blobs), _TIMEOUT, what="the Store")
        self._count("stored", sum(len(blob) for blob in blobs.values()))
        self._keep(blobs)

    def _actor(self) -> Any:
        if self._store is None:
            self._store = ray.get_actor(STORE_ACTOR, namespace=self._namespace)
        return self._store

    def _count(self, operation: str, size: int) -> None:
        if self._metrics is not None:
            self._metrics.count(names.LAZY_SECTION_BYTES, (operation,), size)

    def _keep(self, blobs: dict[str, bytes]) -> None:
        with self._lock:
            for digest, blob in blobs.items():
                if len(blob) > self._limit or digest in self._cache:
                    continue
                self._cache[digest] = blob
                self._cached += len(blob)
            while self._cached > self._limit:
                _, dropped = self._cache.popitem(last=False)
                self._cached -= len(dropped)
