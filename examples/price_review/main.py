"""A price review over a lazily loaded catalogue: `sopy-actors run examples/price_review/main.py`.

Builds a 200,000-product catalogue in a SQLite file, starts the review SOP and sends it notes
(which never move the catalogue), category reviews (the first loads it, in the procedure actor),
a price change (which stores the changed catalogue once) and a sign-off. For each event it prints
the bytes the SOP's host exchanged with the procedure actor, from the host's own counters.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import ray
from workflow import CategoryReviewed, NoteAdded, PriceChange, PriceChanged, Review, SignedOff, review_sop

from sopy_actors import Event
from sopy_actors.runtime.handle import SOPHandle

PRODUCTS = 200_000
CATEGORIES = ("garden", "kitchen", "tools", "toys", "books")


def build_catalogue(path: Path) -> int:
    """Write the catalogue file (the same products every run); returns its product count."""
    chooser = random.Random(7)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE products (sku TEXT PRIMARY KEY, category TEXT, price REAL)")
        db.executemany(
            "INSERT INTO products VALUES (?, ?, ?)",
            ((f"SKU-{i:06d}", CATEGORIES[i % 5], round(chooser.uniform(2, 300), 2)) for i in range(PRODUCTS)),
        )
    return PRODUCTS


def handler_bytes(handle: SOPHandle) -> int:
    """JSON bytes the SOP's host has sent to and received from procedure actors."""
    host = ray.get_actor(handle.host, namespace=handle.namespace)
    counted = ray.get(host.statistics.remote())["handler_bytes"]
    return int(counted["sent"]) + int(counted["received"])


def send(handle: SOPHandle, event: Event[Any]) -> int:
    """Send `event`, print what it did and the bytes it moved; returns those bytes."""
    before = handler_bytes(handle)
    receipt = handle.send(event, timeout=600)
    moved = handler_bytes(handle) - before
    outcome = f"{receipt.outcome.value}" + (f" ({receipt.prompt})" if receipt.rejected else "")
    payload = json.dumps(event.model_dump(mode="json")["payload"])
    print(f"{type(event).__name__}({payload}): {outcome}, {moved:,} bytes host <-> procedure actor")
    return moved


def main() -> dict[str, Any]:
    """Run the review; returns the bytes each event moved and the final state's summary."""
    source = Path(tempfile.mkdtemp(prefix="sopy-price-review-")) / "catalogue.sqlite3"
    print(f"catalogue: {build_catalogue(source):,} products in {source}")
    handle = review_sop(str(source)).start(placement="dedicated")  # its own host: its own counters
    print(f"review {handle.sop_id}: catalogue section not loaded yet, loader {handle.state().lazy_loaders}")
    print("--- events")
    moved = {
        "note": send(handle, NoteAdded("Start with garden: supplier raised prices in March.")),
        "first_review": send(handle, CategoryReviewed("garden")),
        "second_review": send(handle, CategoryReviewed("toys")),
        "unknown_category": send(handle, CategoryReviewed("cars")),
        "price_change": send(handle, PriceChanged(PriceChange(sku="SKU-000010", new_price=19.99))),
        "note_after_change": send(handle, NoteAdded("Toys look fine.")),
        "sign_off": send(handle, SignedOff("dana")),
    }
    final: Review = handle.result(timeout=600)
    catalogue = final.catalogue
    section_bytes = catalogue.stored_bytes
    changed = next(product for product in catalogue.value if product.sku == "SKU-000010")
    print("--- result")
    print(f"catalogue section: {section_bytes:,} bytes of JSON, stored apart (sha256 {catalogue.digest})")
    print(f"findings: {json.dumps(final.findings, sort_keys=True)}")
    print(f"SKU-000010 now costs {changed.price}; notes: {final.notes}")
    untouched = max(moved["note"], moved["note_after_change"], moved["sign_off"])
    print(f"an event that does not read the catalogue moved at most {untouched:,} bytes: {untouched / section_bytes:.4%} of it")
    return {"moved": moved, "section_bytes": section_bytes, "findings": final.findings, "price": changed.price}


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
