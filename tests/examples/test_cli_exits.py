"""`sopy-actors run FILE.py:CALLABLE` and the exit status of an SOP that did not end well."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tests.examples.cli import on_cluster, run_cli
from tests.support import ledger

FLOW = '''
from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt


class Count(BaseModel):
    n: int = 0


class Tick(Event[int]):
    pass


class Counting(Procedure[Count]):
    prompt = make_prompt("Count the ticks.")

    @handler
    def on_tick(self, state: Count, event: Tick) -> Procedure[Count]:
        state.n += event.payload
        return End() if state.n >= 3 else self


def main() -> None:
    raise SystemExit("main ran instead of the callable named")


def count_three() -> None:
    handle = SOP(state=Count(), init_proc=Counting()).start()
    for _ in range(3):
        handle.send(Tick(payload=1))
    print("counted", handle.result(timeout=120).n)
'''


def test_run_calls_the_callable_named_after_the_file(runtime: Any, tmp_path: Path) -> None:
    flow = tmp_path / "counting_flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    done = run_cli("run", f"{flow}:count_three", *on_cluster(runtime))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "counted 3" in done.stdout.splitlines()


def test_attach_to_an_sop_that_did_not_end_well_exits_1_saying_how_it_ended(runtime: Any) -> None:
    handle = ledger.make_sop(5).start()
    handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0)))
    handle.cancel()
    done = run_cli("attach", handle.sop_id, *on_cluster(runtime))
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1].startswith("cancelled")
