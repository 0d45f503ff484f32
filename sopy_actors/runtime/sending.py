"""The sending side of events: sequence numbers, host handles, one Ray call per host per few ms.

`SOPHandle.submit` numbers its event (`Sequencer`) and hands it to the process's `SendBatcher`,
which groups the events bound for one host and sends them with `SOPHostActor.send_batch`. A
batch leaves when it is full, when a background thread finds it older than the window, or as
soon as someone waits on one of its futures — so waiting never pays the window.

Each event carries a floor: every lower number of its sender is settled (answered, or known
not to have arrived). A host that misses a number below the floor stops waiting for it at
once; so a send that failed never stalls the next one.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import ray

from sopy_actors.errors import RuntimeUnavailable
from sopy_actors.runtime.messages import Reply, SendItem
from sopy_actors.runtime.rayutil import wait

__all__ = ["PendingReply", "SendBatcher", "Sequencer", "forget_host", "forget_hosts", "host_actor"]

_WINDOW_SECONDS = 0.002
_MAX_BATCH = 1000

# Host handles by (namespace, name): a lookup is a GCS round trip, and hosts are restartable
# actors whose handles stay valid across restarts (a handle of a host that is gone for good is
# forgotten when a send through it fails).
_hosts: dict[tuple[str, str], Any] = {}


def host_actor(namespace: str, name: str) -> Any:
    """The SOPHost actor `name` (cached).

    Raises:
        RuntimeUnavailable: no such host is running.
    """
    actor = _hosts.get((namespace, name))
    if actor is None:
        try:
            actor = ray.get_actor(name, namespace=namespace)
        except ValueError as error:
            raise RuntimeUnavailable(f"SOP host {name} is not running: {error}") from error
        _hosts[(namespace, name)] = actor
    return actor


def forget_host(namespace: str, name: str) -> None:
    """Drop a cached host handle (the next send looks the host up again)."""
    _hosts.pop((namespace, name), None)


def forget_hosts() -> None:
    """Drop every cached host handle (the process left its cluster)."""
    _hosts.clear()


class Sequencer:
    """Numbers this process's events per SOP, and knows which of them are settled; thread-safe.

    Args:
        sender: this process's sender id (a fresh one per process by default).
    """

    _shared: Sequencer | None = None

    def __init__(self, sender: str | None = None) -> None:
        self.sender = sender or f"proc-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._open: dict[str, set[int]] = {}

    @classmethod
    def shared(cls) -> Sequencer:
        """The process's sequencer."""
        if cls._shared is None:
            cls._shared = Sequencer()
        return cls._shared

    def item(self, sop_id: str, event: dict[str, Any]) -> SendItem:
        """The next numbered item for `sop_id`, with its floor (every lower number is settled)."""
        with self._lock:
            seq = self._next.get(sop_id, 0)
            self._next[sop_id] = seq + 1
            unsettled = self._open.setdefault(sop_id, set())
            unsettled.add(seq)
            return SendItem(sop_id, event, self.sender, seq, min(unsettled))

    def settle(self, items: list[SendItem]) -> None:
        """These items were answered, or will never arrive."""
        with self._lock:
            for item in items:
                if item.sender == self.sender and item.seq is not None:
                    self._open.get(item.sop_id, set()).discard(item.seq)


class _Batch:
    """Events for one host, sent together; `ref` resolves to their replies in order."""

    def __init__(self, key: tuple[str, str], actor: Any) -> None:
        self.key = key
        self.actor = actor
        self.items: list[SendItem] = []
        self.ref: Any = None
        self.sent = threading.Event()
        self._replies: list[Reply] | None = None
        self._failure: RuntimeUnavailable | None = None

    def send(self) -> None:
        try:
            self.ref = self.actor.send_batch.remote(json.dumps(self.items))
        except Exception as error:
            self._fail(RuntimeUnavailable(f"SOP host {self.key[1]} unavailable: {error}"))
        self.sent.set()

    def replies(self, timeout: float | None) -> list[Reply]:
        if self._replies is None and self._failure is None:
            self.sent.wait()
            try:
                self._replies = json.loads(wait(self.ref, timeout, what=f"SOP host {self.key[1]}"))
            except RuntimeUnavailable as error:  # the host died for good (TimedOut: still open)
                if not isinstance(error, TimeoutError):
                    self._fail(error)
                raise
            Sequencer.shared().settle(self.items)
        if self._failure is not None:
            raise self._failure
        assert self._replies is not None
        return self._replies

    def _fail(self, error: RuntimeUnavailable) -> None:
        self._failure = error
        forget_host(*self.key)
        Sequencer.shared().settle(self.items)


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
        if self._batch.ref is None:
            return True  # the send itself failed
        ready, _ = ray.wait([self._batch.ref], timeout=0)
        return bool(ready)

    def reply(self, timeout: float | None = None) -> Reply:
        """Wait for the host's reply (a receipt's fields or `error`).

        Raises:
            RuntimeUnavailable: the host could not be reached (TimedOut: no reply in time).
        """
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
        shared = cls._shared  # read without the lock: it is set once, and every event asks
        if shared is not None:
            return shared
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = SendBatcher()
            return cls._shared

    def add(self, key: tuple[str, str], actor: Any, item: SendItem) -> PendingReply:
        """Queue `item` for the host `key` = (namespace, host name); returns its future."""
        with self._lock:
            batch = self._open.get(key)
            opened = batch is None
            if batch is None:
                batch = self._open[key] = _Batch(key, actor)
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
        elif opened:  # the flusher takes every open batch: waking it once per batch is enough
            self._wake.set()
        return PendingReply(self, batch, index)

    def flush(self, batch: _Batch) -> None:
        """Send `batch` now if it is still open (someone waits on it)."""
        if batch.sent.is_set():  # already sent: so for every wait on a batch but the first
            return
        with self._lock:
            claimed = self._open.get(batch.key) is batch
            if claimed:
                del self._open[batch.key]
        if claimed:
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
