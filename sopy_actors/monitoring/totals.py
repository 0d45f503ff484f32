"""Cumulative metric totals and the Monitor's SQLite file (plain Python; the Monitor wraps it).

Reporters send deltas in numbered batches; `Totals.apply` adds a batch once (a batch whose
number a reporter already sent is skipped), and `MonitorDB.save` writes the changed series and
the reporter's batch number in one transaction. A restarted Monitor loads the totals back, so
counters never go backwards and no batch is counted twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sopy_actors.telemetry.names import Family, family

__all__ = ["Batch", "MonitorDB", "Series", "Totals"]

Series = tuple[str, tuple[str, ...]]
"""(family name, label values)"""


@dataclass
class Batch:
    """One report of deltas from one reporter (an actor incarnation), validated.

    Wire form (plain data): `{"reporter", "seq", "kind", "counters": [[name, [labels], delta]],
    "histograms": [[name, [labels], [bucket counts], sum, count]], "samples": [seconds, ...]}`.
    """

    reporter: str
    seq: int
    kind: str
    counters: list[tuple[Family, tuple[str, ...], float]] = field(default_factory=list)
    histograms: list[tuple[Family, tuple[str, ...], list[int], float, int]] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    skipped: int = 0

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Batch:
        """Validate a wire batch; series of unknown families or wrong arity are skipped and counted."""
        batch = cls(str(data["reporter"]), int(data["seq"]), str(data.get("kind", "unknown")))
        for name, labels, delta in data.get("counters", []):
            known = family(name)
            if known is None or known.kind != "counter" or len(labels) != len(known.labels) or delta < 0:
                batch.skipped += 1
                continue
            batch.counters.append((known, tuple(str(v) for v in labels), float(delta)))
        for name, labels, buckets, total, count in data.get("histograms", []):
            known = family(name)
            if (
                known is None
                or known.kind != "histogram"
                or len(labels) != len(known.labels)
                or len(buckets) != len(known.buckets) + 1
            ):
                batch.skipped += 1
                continue
            batch.histograms.append((known, tuple(str(v) for v in labels), [int(b) for b in buckets], float(total), int(count)))
        batch.samples = [float(s) for s in data.get("samples", [])][-256:]
        return batch


class Totals:
    """Counter and histogram totals by series, plus the last batch number of each reporter."""

    def __init__(self) -> None:
        self.counters: dict[Series, float] = {}
        self.histograms: dict[Series, list[Any]] = {}  # [bucket counts (non-cumulative), sum, count]
        self.seqs: dict[str, int] = {}

    def apply(self, batch: Batch) -> set[Series] | None:
        """Add a batch; returns the series it changed, or None if this batch was applied before."""
        if batch.seq <= self.seqs.get(batch.reporter, -1):
            return None
        self.seqs[batch.reporter] = batch.seq
        changed: set[Series] = set()
        for known, labels, delta in batch.counters:
            key = (known.name, labels)
            self.counters[key] = self.counters.get(key, 0.0) + delta
            changed.add(key)
        for known, labels, buckets, total, count in batch.histograms:
            key = (known.name, labels)
            current = self.histograms.setdefault(key, [[0] * len(buckets), 0.0, 0])
            current[0] = [a + b for a, b in zip(current[0], buckets, strict=True)]
            current[1] += total
            current[2] += count
            changed.add(key)
        return changed

    def add(self, known: Family, labels: tuple[str, ...], delta: float = 1.0) -> Series:
        """Count something the Monitor itself observed."""
        key = (known.name, labels)
        self.counters[key] = self.counters.get(key, 0.0) + delta
        return key

    def total(self, name: str) -> float:
        """Sum of a counter over all its series."""
        return sum(v for (n, _), v in self.counters.items() if n == name)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (name TEXT, labels TEXT, value TEXT, PRIMARY KEY (name, labels));
CREATE TABLE IF NOT EXISTS reporters (id TEXT PRIMARY KEY, seq INTEGER, seen REAL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS subscriptions (sop_id TEXT PRIMARY KEY, data TEXT);
CREATE TABLE IF NOT EXISTS probes (name TEXT PRIMARY KEY, data TEXT);
"""

_REPORTER_RETENTION = 7 * 24 * 3600.0


class MonitorDB:
    """The Monitor's durable part: totals, reporter batch numbers, settings, subscriptions, probes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def load(self) -> Totals:
        """The totals as last saved (reporters unseen for a week are forgotten)."""
        totals = Totals()
        for name, labels, value in self._db.execute("SELECT name, labels, value FROM series"):
            known = family(name)
            if known is None:
                continue
            key = (name, tuple(json.loads(labels)))
            data = json.loads(value)
            if known.kind == "counter":
                totals.counters[key] = float(data)
            elif known.kind == "histogram" and len(data[0]) == len(known.buckets) + 1:
                totals.histograms[key] = data
        self._db.execute("DELETE FROM reporters WHERE seen < ?", (time.time() - _REPORTER_RETENTION,))
        totals.seqs = dict(self._db.execute("SELECT id, seq FROM reporters"))
        return totals

    def save(self, totals: Totals, changed: set[Series], reporter: str | None = None) -> None:
        """Write the changed series (and the reporter's batch number) in one transaction."""
        rows = []
        for key in changed:
            value = totals.counters.get(key) if key in totals.counters else totals.histograms.get(key)
            rows.append((key[0], json.dumps(list(key[1])), json.dumps(value)))
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO series VALUES (?, ?, ?)", rows)
            if reporter is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO reporters VALUES (?, ?, ?)", (reporter, totals.seqs[reporter], time.time())
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def setting(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        """All subscriptions or probes, by key."""
        assert table in ("subscriptions", "probes")
        return {key: json.loads(data) for key, data in self._db.execute(f"SELECT * FROM {table}")}

    def put(self, table: str, key: str, data: dict[str, Any] | None) -> None:
        """Insert or replace a subscription or probe; None deletes it."""
        assert table in ("subscriptions", "probes")
        key_column = "sop_id" if table == "subscriptions" else "name"
        if data is None:
            self._db.execute(f"DELETE FROM {table} WHERE {key_column} = ?", (key,))
        else:
            self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (key, json.dumps(data)))
