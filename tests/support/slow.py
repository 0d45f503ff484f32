"""An SOP whose handler takes as long as the event asks: cancels and timeouts mid-handler."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from sopy_actors import SOP, Event, Procedure, ProcedureOptions, handler, make_prompt


class Work(BaseModel):
    done: int = 0


class WorkRequested(Event[float]):
    """Work for `payload` seconds."""


class Working(Procedure[Work]):
    prompt = make_prompt("Do the work asked for.")

    @handler
    def on_work(self, state: Work, event: WorkRequested) -> Procedure[Work]:
        time.sleep(event.payload)
        state.done += 1
        return self


def make_sop() -> SOP[Work]:
    return SOP(state=Work(), init_proc=Working())


class Bulk(BaseModel):
    """A state a handler can make unserialisable or too large."""

    blob: str = ""
    extra: Any = None


class BulkRequested(Event[str]):
    """"sleep:<seconds>", "unserialisable", or "big:<bytes>"."""


class Bulking(Procedure[Bulk]):
    prompt = make_prompt("Do what the request says.")
    sop_options = ProcedureOptions(handler_timeout=2.0, max_state_bytes=64 * 1024)

    @handler
    def on_request(self, state: Bulk, event: BulkRequested) -> Procedure[Bulk]:
        kind, _, value = event.payload.partition(":")
        if kind == "sleep":
            time.sleep(float(value))
        elif kind == "unserialisable":
            state.extra = object()
        elif kind == "big":
            state.blob = "x" * int(value)
        return self


def make_bulk_sop() -> SOP[Bulk]:
    return SOP(state=Bulk(), init_proc=Bulking())


class Narrow(Working):
    """`Working`, one handler at a time per actor (`max_concurrency=1`), 2 s each at most."""

    prompt = make_prompt("Do the work asked for, one at a time.")
    sop_options = ProcedureOptions(max_concurrency=1, handler_timeout=2.0)


def make_narrow_sop() -> SOP[Work]:
    return SOP(state=Work(), init_proc=Narrow())
