"""`sopy-actors run FILE.py:CALLABLE` and the exit status of an SOP that did not end well."""

from __future__ import annotations

from typing import Any

from tests.examples.cli import on_cluster, run_cli
from tests.support import ledger


def test_run_calls_the_callable_named_after_the_file(runtime: Any) -> None:
    done = run_cli("run", "tests/support/import_marks.py:count_two", *on_cluster(runtime))
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.splitlines()
    assert "counted 2" in printed and "main ran" not in printed


def test_attach_to_an_sop_that_did_not_end_well_exits_1_saying_how_it_ended(runtime: Any) -> None:
    handle = ledger.make_sop(5).start()
    handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0)))
    handle.cancel()
    done = run_cli("attach", handle.sop_id, *on_cluster(runtime))
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1].startswith("cancelled")
