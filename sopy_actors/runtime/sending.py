"""Driver-side batching of submitted events: one Ray call per host per few milliseconds.

`SOPHandle.submit` hands its event to the process's `SendBatcher`, which groups the events bound
for one host and sends them with `SOPHostActor.send_batch`. A batch leaves when it is full, when
a background thread finds it older than the window, or as soon as someone waits on one of its
futures — so waiting never pays the window.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import ray

from sopy_actors.runtime.messages import Reply, SendItem
from sopy_actors.runtime.rayutil import wait

__all__ = ["PendingReply", "SendBatcher"]

_WINDOW_SECONDS = 0.002
_MAX_BATCH = 1000

class _Batch:
    """Events for one host, sent together; `ref` resolves to their replies in order."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.items: list[SendItem] = []
        self.ref: Any = None
        self.sent = threading.Event()
        self._replies: list[Reply] | None = None

    def send(self) -> None:
        self.ref = self.actor.send_batch.remote(json.dumps(self.items))
        self.sent.set()

    def replies(self, timeout: float | None) -> list[Reply]:
        if self._replies is None:
            self.sent.wait()
            self._replies = json.loads(wait(self.ref, timeout, what="an SOP host"))
        return self._replies


class PendingReply:
    """The host's reply to one batched event, once it is committed."""

    def __init__(self, batcher: SendBatcher, batch: _Batch, index: int) -> None:
        self._batcher = batcher
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        """True once the event is committed (or failed)."""
        if not self._batch.sent.is_set():
            return False
        ready, _ = ray.wait([self._batch.ref], timeout=0)
        return bool(ready)

    def reply(self, timeout: float | None = None) -> Reply:
        """Wait for the host's reply (a receipt's fields or `error`)."""
        self._batcher.flush(self._batch)
        return self._batch.replies(timeout)[self._index]


class SendBatcher:
    """Groups events per host; one per process (`SendBatcher.shared()`); thread-safe."""

    _shared: SendBatcher | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str], _Batch] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def shared(cls) -> SendBatcher:
        """The process's batcher, created on first use."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = SendBatcher()
            return cls._shared

    def add(self, key: tuple[str, str], actor: Any, item: SendItem) -> PendingReply:
        """Queue `item` for the host `key` = (namespace, host name); returns its future."""
        with self._lock:
            batch = self._open.get(key)
            if batch is None:
                batch = self._open[key] = _Batch(actor)
            batch.items.append(item)
            index = len(batch.items) - 1
            full = len(batch.items) >= _MAX_BATCH
            if full:
                del self._open[key]
            elif self._thread is None:
                self._thread = threading.Thread(target=self._flush_forever, name="sopy-send-batcher", daemon=True)
                self._thread.start()
        if full:
            batch.send()
        else:
            self._wake.set()
        return PendingReply(self, batch, index)

    def flush(self, batch: _Batch) -> None:
        """Send `batch` now if it is still open (someone waits on it)."""
        with self._lock:
            claimed = next((key for key, open_batch in self._open.items() if open_batch is batch), None)
            if claimed is not None:
                del self._open[claimed]
        if claimed is not None:
            batch.send()

    def _flush_forever(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(_WINDOW_SECONDS)
            with self._lock:
                batches = list(self._open.values())
                self._open.clear()
            for batch in batches:
                batch.send()
