"""A price review over a 200,000-product catalogue kept as a lazy state section.

The catalogue lives in a SQLite file. The SOP's state names the file and registers a loader
for its `catalogue` section: the first handler that reads the section loads it (in the
procedure actor), after which it is a content-addressed blob in the Store. Notes and sign-offs
never touch it, so their events move a few kilobytes; a price change rewrites it once.
"""

from __future__ import annotations

import sqlite3
import statistics

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Lazy, LazyState, Procedure, handler, lazy_loader, make_prompt


class Product(BaseModel):
    sku: str
    category: str
    price: float


class PriceChange(BaseModel):
    sku: str
    new_price: float


class Review(LazyState):
    source: str
    notes: list[str] = Field(default_factory=list)
    findings: dict[str, float] = Field(default_factory=dict)
    changes: list[PriceChange] = Field(default_factory=list)
    catalogue: Lazy[list[Product]] = Lazy([])


class NoteAdded(Event[str]):
    """A reviewer's note: touches only `notes`."""


class CategoryReviewed(Event[str]):
    """Review one category: reads the catalogue (loading it the first time)."""


class PriceChanged(Event[PriceChange]):
    """Change one product's price: rewrites the catalogue section."""


class SignedOff(Event[str]):
    """The reviewer signs off."""


@lazy_loader("catalogue-db")
def load_catalogue(state: Review) -> list[Product]:
    """Every product in the SQLite file the state names."""
    with sqlite3.connect(state.source) as db:
        rows = db.execute("SELECT sku, category, price FROM products ORDER BY sku").fetchall()
    return [Product(sku=sku, category=category, price=price) for sku, category, price in rows]


class Reviewing(Procedure[Review]):
    prompt = make_prompt("Review prices by category; change outliers; sign off when done.")

    @handler
    def on_note(self, state: Review, event: NoteAdded) -> Procedure[Review]:
        state.notes.append(event.payload)
        return self

    @handler
    def on_category(self, state: Review, event: CategoryReviewed) -> Procedure[Review] | str:
        prices = [p.price for p in state.catalogue.value if p.category == event.payload]
        if not prices:
            return f"No products in category {event.payload!r}: review one of the catalogue's categories."
        state.findings[f"{event.payload}:median"] = round(statistics.median(prices), 2)
        state.findings[f"{event.payload}:max"] = max(prices)
        return self

    @handler
    def on_change(self, state: Review, event: PriceChanged) -> Procedure[Review] | str:
        for product in state.catalogue.value:
            if product.sku == event.payload.sku:
                product.price = event.payload.new_price
                state.changes.append(event.payload)
                return self
        return f"There is no product {event.payload.sku}: change a SKU from the catalogue."

    @handler
    def on_sign_off(self, state: Review, event: SignedOff) -> Procedure[Review]:
        state.notes.append(f"signed off by {event.payload}")
        return End()


def review_sop(source: str = "catalogue.sqlite3") -> SOP[Review]:
    """A review of the catalogue in `source`, loaded when first read."""
    review = Review(source=source)
    review.register_loader("catalogue", "catalogue-db")
    return SOP(state=review, init_proc=Reviewing())
