"""A workflow module that leaves a mark (a file named by the process id) in every process that
imports it, so a test can tell which processes loaded workflow code. Also a workflow file for
`sopy-actors run import_marks.py:count_two` (a callable other than `main`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt

MARKS = Path(tempfile.gettempdir()) / "sopy-import-marks"
MARKS.mkdir(exist_ok=True)
(MARKS / str(os.getpid())).touch()


def importers() -> set[int]:
    """The process ids that imported this module (since the marks were last cleared)."""
    return {int(mark.name) for mark in MARKS.iterdir()}


class Tally(BaseModel):
    count: int = 0


class Tapped(Event[int]):
    pass


class Counting(Procedure[Tally]):
    prompt = make_prompt("Count the taps.")

    @handler
    def on_tap(self, state: Tally, event: Tapped) -> Procedure[Tally]:
        state.count += event.payload
        return End() if state.count >= 2 else self


def make_sop() -> SOP[Tally]:
    return SOP(state=Tally(), init_proc=Counting())


def main() -> None:
    """What `sopy-actors run` calls when no callable is named."""
    print("main ran")


def count_two() -> None:
    """Start an SOP, tap it twice and print its count."""
    handle = make_sop().start()
    for _ in range(2):
        handle.send(Tapped(payload=1))
    print("counted", handle.result(timeout=120).count)
