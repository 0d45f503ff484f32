"""An SOP whose state keeps a large stock list as a lazy section: most events never touch it."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Lazy, LazyState, Procedure, ProcedureOptions, handler, make_prompt


class Row(BaseModel):
    sku: str
    count: int


class Stock(LazyState):
    notes: list[str] = Field(default_factory=list)
    total: int | None = None
    rows: Lazy[list[Row]] = Lazy([])
    extra: list[str] = Field(default_factory=list)


class Noted(Event[str]):
    """Touches only `notes`."""


class Restocked(Event[Row]):
    """Appends a row to the lazy section."""


class RestockedSlowly(Event[Row]):
    """Appends a row to the lazy section after a pause (a crash test stops the host meanwhile)."""


class Counted(Event[None]):
    """Reads the lazy section (sums its counts into `total`), changing nothing in it."""


class ExtraWanted(Event[str]):
    """Registers a loader (by name, the payload) for `extra` and reads it."""


class Closed(Event[None]):
    pass


def broken_loader() -> list[str]:
    raise ConnectionError("the warehouse API is down")


def extra_loader() -> list[str]:
    return ["loaded", "by", "reference"]


class Keeping(Procedure[Stock]):
    prompt = make_prompt("Keep the stock list.")
    sop_options = ProcedureOptions(max_state_bytes=64 * 1024 * 1024)

    @handler
    def on_note(self, state: Stock, event: Noted) -> Procedure[Stock]:
        state.notes.append(event.payload)
        return self

    @handler
    def on_restock(self, state: Stock, event: Restocked) -> Procedure[Stock]:
        state.rows.value.append(event.payload)
        return self

    @handler
    def on_slow_restock(self, state: Stock, event: RestockedSlowly) -> Procedure[Stock]:
        time.sleep(3.0)
        state.rows.value.append(event.payload)
        return self

    @handler
    def on_count(self, state: Stock, event: Counted) -> Procedure[Stock]:
        state.total = sum(row.count for row in state.rows.value)
        return self

    @handler
    def on_extra(self, state: Stock, event: ExtraWanted) -> Procedure[Stock]:
        state.register_loader("extra", event.payload)
        state.notes.append(f"extra has {len(state.extra)} items")
        return self

    @handler
    def on_close(self, state: Stock, event: Closed) -> Procedure[Stock]:
        return End()


def rows(count: int) -> list[Row]:
    """`count` rows of about 40 bytes of JSON each."""
    return [Row(sku=f"sku-{i:08d}", count=i % 7) for i in range(count)]


def make_sop(row_count: int) -> SOP[Stock]:
    return SOP(state=Stock(rows=Lazy(rows(row_count))), init_proc=Keeping())


class PlainStock(BaseModel):
    """The same data as `Stock` with the rows as an ordinary field: the benchmark's baseline."""

    notes: list[str] = Field(default_factory=list)
    rows: list[Row] = Field(default_factory=list)


class PlainKeeping(Procedure[PlainStock]):
    prompt = make_prompt("Keep the stock list.")
    sop_options = ProcedureOptions(max_state_bytes=64 * 1024 * 1024)

    @handler
    def on_note(self, state: PlainStock, event: Noted) -> Procedure[PlainStock]:
        state.notes.append(event.payload)
        return self


def make_plain_sop(row_count: int) -> SOP[PlainStock]:
    return SOP(state=PlainStock(rows=rows(row_count)), init_proc=PlainKeeping())
