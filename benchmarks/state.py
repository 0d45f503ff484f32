"""Compressed state: ratio and cost on a realistic SOP state; prints one JSON line.

    python benchmarks/state.py [--orders 3000] [--repeat 20]

The state is an order-desk SOP's state (a pydantic model): `--orders` order records (id,
customer, SKU lines, status, timestamps, a short note), a status history and counters, as a
workflow that has run for a while holds them. Figures, for each codec available here (zlib
always, zstd when the `zstandard` package is installed):
- bytes of the state's JSON form, of the compressed blob, and their ratio;
- compress and decompress time (best of `--repeat`), in milliseconds and as MB/s of JSON;
- the spec's pickle+gzip size of the same data, for comparison only (never used: see
  `sopy_actors.state.compression`);
- a `CompressedState.compress()` + `decompress()` round trip of the same state;
- bytes per stored version (`--versions` commits through the SQLite Store, a snapshot every
  `KEYFRAME_EVERY` versions, deltas between): a 40-paragraph document with one paragraph edited
  and an edit log growing per version, and a ledger appending one entry per version.
Not a test: nothing here asserts a time. No Ray.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import pickle
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.store import SQLiteStore
from sopy_actors.runtime.versions import KEYFRAME_EVERY
from sopy_actors.state.compression import CompressedState, available_codec, compress_json, decompress_json
from tests.support.records import entry, record

STATUSES = ("received", "reserved", "picked", "shipped", "delivered", "returned")
CUSTOMERS = [f"customer-{i:04d}" for i in range(400)]
SKUS = [f"SKU-{i:05d}" for i in range(1200)]
NOTES = (
    "Leave at the back door.",
    "Customer asked for a call before delivery.",
    "",
    "Gift wrap, no invoice in the parcel.",
    "Partial shipment accepted.",
)


class Line(BaseModel):
    sku: str
    quantity: int
    unit_price: float


class OrderRecord(BaseModel):
    id: str
    customer: str
    lines: list[Line]
    status: str
    created: str
    updated: str
    note: str = ""


class OrderDesk(CompressedState):
    desk: str = "eu-west"
    orders: list[OrderRecord] = Field(default_factory=list)
    history: list[dict[str, Any]] = Field(default_factory=list)
    counters: dict[str, int] = Field(default_factory=dict)


def realistic_state(orders: int, seed: int = 7) -> OrderDesk:
    rng = random.Random(seed)
    records = []
    for index in range(orders):
        created = 1_760_000_000 + index * 37 + rng.randint(0, 30)
        records.append(
            OrderRecord(
                id=f"ORD-{index:07d}",
                customer=rng.choice(CUSTOMERS),
                lines=[
                    Line(sku=rng.choice(SKUS), quantity=rng.randint(1, 5), unit_price=round(rng.uniform(1, 250), 2))
                    for _ in range(rng.randint(1, 4))
                ],
                status=rng.choice(STATUSES),
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
                updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created + rng.randint(60, 86_400))),
                note=rng.choice(NOTES),
            )
        )
    history = [
        {"version": v, "event": rng.choice(("OrderPlaced", "StockReserved", "Shipped")), "order": f"ORD-{v:07d}"}
        for v in range(orders)
    ]
    counters = {status: sum(1 for r in records if r.status == status) for status in STATUSES}
    return OrderDesk(orders=records, history=history, counters=counters)


def best_of(repeat: int, call: Callable[[], Any]) -> float:
    """The fastest of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def measure(orders: int, repeat: int) -> dict[str, Any]:
    state = realistic_state(orders)
    data = state.model_dump(mode="json")
    raw = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    codecs: list[Any] = ["zlib"] + (["zstd"] if available_codec() == "zstd" else [])
    report: dict[str, Any] = {"benchmark": "state_compression", "orders": orders, "json_bytes": raw, "codecs": {}}
    for codec in codecs:
        blob = compress_json(data, codec=codec)
        assert decompress_json(blob) == data
        seconds_in = best_of(repeat, functools.partial(compress_json, data, codec=codec))
        seconds_out = best_of(repeat, functools.partial(decompress_json, blob))
        report["codecs"][codec] = {
            "bytes": len(blob),
            "ratio": round(raw / len(blob), 2),
            "compress_ms": round(seconds_in * 1000, 2),
            "decompress_ms": round(seconds_out * 1000, 2),
            "compress_mb_s": round(raw / seconds_in / 1e6, 1),
            "decompress_mb_s": round(raw / seconds_out / 1e6, 1),
        }
    report["pickle_gzip_bytes"] = len(gzip.compress(pickle.dumps(data)))  # the spec's way, size only

    def round_trip() -> None:
        copy = state.model_copy(deep=True)
        copy.compress()
        copy.decompress()

    report["compressed_state_round_trip_ms"] = round(best_of(max(1, repeat // 4), round_trip) * 1000, 2)
    report["default_codec"] = available_codec()
    report["python"] = sys.version.split()[0]
    return report


def bytes_per_version(make_state: Callable[[int], dict[str, Any]], versions: int) -> dict[str, Any]:
    """Commit `versions` versions of one SOP through a SQLite Store; what each version cost."""
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory) / "store.sqlite3")
        previous = record("doc", 0).model_copy(update={"state": {"type": "m:Doc", "data": make_state(0)}})
        store.create(previous)
        for version in range(1, versions + 1):
            current = record("doc", version).model_copy(update={"state": {"type": "m:Doc", "data": make_state(version)}})
            store.write([Commit(record=current, entry=entry("doc", version, f"e{version}")).rows(previous)])
            previous = current
        infos = store.versions("doc")
        store.close()
    sizes = {kind: [info.size for info in infos if info.kind == kind] for kind in ("snapshot", "delta")}
    return {
        "state_json_bytes": len(json.dumps(previous.state)),
        "versions": len(infos),
        "mean_bytes_per_version": round(statistics.mean(info.size for info in infos)),
        "mean_snapshot_bytes": round(statistics.mean(sizes["snapshot"])),
        "mean_delta_bytes": round(statistics.mean(sizes["delta"])),
    }


def document(version: int) -> dict[str, Any]:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "policy", "review", "draft", "section", "clause"]
    chooser = random.Random(1)
    paragraphs = [" ".join(chooser.choice(words) for _ in range(60)) for _ in range(40)]
    paragraphs[version % 40] += f" (edit {version})"
    return {"title": "Contract", "paragraphs": paragraphs, "edits": [f"edit {i}" for i in range(version)], "reviewer": "ann"}


def ledger(version: int) -> dict[str, Any]:
    return {"entries": {"a": list(range(version))}, "expected": 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--versions", type=int, default=200)
    arguments = parser.parse_args()
    report = measure(arguments.orders, arguments.repeat)
    report["keyframe_every"] = KEYFRAME_EVERY
    report["versions"] = {
        "document": bytes_per_version(document, arguments.versions),
        "ledger": bytes_per_version(ledger, arguments.versions),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
