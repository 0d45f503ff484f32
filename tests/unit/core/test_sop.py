"""The SOP definition, its filters and the in-process engine's `with` semantics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sopy_actors import SOP, Outcome, Prompt, current_sop
from sopy_actors.core.options import Semantics
from sopy_actors.errors import DefinitionError, RecoveryExhausted, SOPViolation
from sopy_actors.testing import LocalSOP
from tests.support import docflow as d

ROOT = Path(__file__).resolve().parents[3]


def test_sop_definition_problems_are_listed_together() -> None:
    with pytest.raises(DefinitionError) as info:
        SOP(state=d.DocState, init_proc=d.Drafting, retry_limits=-1)  # type: ignore[arg-type]
    assert len(info.value.problems) == 3
    assert "write DocState(...)" in str(info.value) and "write Drafting()" in str(info.value)


def test_observes_ignores_other_event_types() -> None:
    run = LocalSOP(d.make_sop().observes(d.ReviewDone))
    transition = run.send(d.DraftWritten(payload=d.Draft(text="x")))
    assert transition.outcome is Outcome.IGNORED and run.procedure_name == "Drafting"


def test_from_agent_ignores_events_from_other_senders() -> None:
    run = LocalSOP(d.make_sop().from_agent("writer"))
    assert run.send(d.DraftWritten(payload=d.Draft(text="x"), sender="intruder")).outcome is Outcome.IGNORED
    assert run.send(d.DraftWritten(payload=d.Draft(text="x"), sender="writer")).outcome is Outcome.TRANSITIONED


def test_an_event_id_is_applied_once() -> None:
    run = LocalSOP(d.make_sop())
    event = d.DraftWritten(payload=d.Draft(text="x"))
    first = run.send(event)
    assert run.send(event) is first
    assert run.version == 1 and len(run.history()) == 1


def test_history_records_each_committed_event() -> None:
    run = LocalSOP(d.make_sop())
    run.send(d.DraftWritten(payload=d.Draft(text="")))
    run.send(d.DraftWritten(payload=d.Draft(text="x")))
    assert [(h.version, h.from_procedure, h.to_procedure, h.outcome) for h in run.history()] == [
        (1, "Drafting", "Drafting", Outcome.REJECTED),
        (2, "Drafting", "Reviewing", Outcome.TRANSITIONED),
    ]


def test_result_before_end_raises_and_after_end_returns_the_state() -> None:
    run = LocalSOP(d.make_sop())
    with pytest.raises(Exception, match="not finished: still in Drafting"):
        run.result()
    run.send(d.DraftWritten(payload=d.Draft(text="x")))
    run.send(d.ReviewDone(payload=d.Review(approved=True, comment="ok")))
    assert run.result().text == "x"


def test_with_block_calls_the_error_handler_with_sopys_prompt_until_the_sop_ends() -> None:
    prompts = []

    def nudge(prompt: Prompt) -> None:  # SOPy's signature: the prompt; the run is current_sop()
        prompts.append(prompt.prompt)
        run = current_sop()
        if run.procedure_name == "Drafting":
            run.send(d.DraftWritten(payload=d.Draft(text="late")))
        else:
            run.send(d.ReviewDone(payload=d.Review(approved=True, comment="ok")))

    sop = d.make_sop(semantics=Semantics()).with_recovery(nudge, retry_limits=3)
    with LocalSOP(sop) as run:
        assert current_sop() is run
    assert prompts == [
        # SOPy's text, its double period included when the prompt ends with one
        "SOP left unfinished: current procedure is Drafting with prompt Write a draft of the document..",
        "SOP left unfinished: current procedure is Reviewing with prompt Review the draft and approve it or ask "
        "for changes..",
    ]
    assert run.done and current_sop() is None


def test_with_block_raises_sop_violation_when_recovery_cannot_finish_the_sop() -> None:
    sop = d.make_sop().with_recovery(lambda prompt: None, retry_limits=2)
    with pytest.raises(SOPViolation, match="SOP left unfinished: current procedure is Drafting") as caught, LocalSOP(sop):
        pass
    assert isinstance(caught.value, RecoveryExhausted) and caught.value.attempts == 2


def test_sopy_exit_retries_share_the_budget_with_the_runs_rejections() -> None:
    calls = []
    sop = d.make_sop(semantics=Semantics()).with_recovery(calls.append, retry_limits=3)
    with pytest.raises(SOPViolation), LocalSOP(sop) as run:
        run.send(d.DraftWritten(payload=d.Draft(text="")))
        run.send(d.DraftWritten(payload=d.Draft(text="")))  # two rejections of three
    assert len(calls) == 1


def test_start_without_a_runtime_says_what_to_do() -> None:
    # A fresh interpreter: the session's Ray fixture may have installed an engine in this one.
    code = (
        "from tests.support import docflow as d\n"
        "from sopy_actors.errors import RuntimeUnavailable\n"
        "try:\n    d.make_sop().start()\nexcept RuntimeUnavailable as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60, cwd=ROOT)
    assert "call sopy_actors.init() before SOP.start()" in done.stdout


def test_with_recovery_keeps_the_filters_and_validates_its_arguments() -> None:
    sop = d.make_sop().observes(d.ReviewDone).with_recovery(lambda run: None, retry_limits=5)
    assert sop.retry_limits == 5 and sop.observed == (d.ReviewDone,)
    with pytest.raises(DefinitionError, match="retry_limits"):
        d.make_sop().with_recovery(lambda run: None, retry_limits=-2)


def test_from_agent_accepts_events_addressed_to_a_governed_agent() -> None:
    run = LocalSOP(d.make_sop().from_agent("writer"))
    event = d.DraftWritten(d.Draft(text="x"), sender="editor", target="writer")
    assert run.send(event).outcome is Outcome.TRANSITIONED


def test_from_agent_drops_events_with_neither_sender_nor_target() -> None:
    run = LocalSOP(d.make_sop().from_agent("writer"))
    assert run.send(d.DraftWritten(payload=d.Draft(text="x"))).outcome is Outcome.IGNORED
    assert run.procedure_name == "Drafting" and run.state.text == ""
