"""What outlives an agent process: pending calls on disk and a call's place in its conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sopy_actors.agents import AgentResult
from sopy_actors.agents.future import AgentRequest
from sopy_actors.agents.guard import CallContext, SOPGuard
from sopy_actors.agents.sessions import (
    PendingCall,
    PendingCalls,
    final_answer,
    has_prompt,
    open_tool_uses,
    prompt_message,
)


def _pending(call_id: str, sequence: int) -> PendingCall:
    return PendingCall(request=AgentRequest(call_id=call_id, prompt="p", conversation="c"), sequence=sequence)


def _use(tool_use_id: str, name: str = "shout") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_use_id, "name": name, "input": {"text": "x"}}}


def test_pending_calls_load_oldest_first_with_their_progress_and_skip_unreadable_files(tmp_path: Path) -> None:
    calls = PendingCalls(tmp_path)
    late, early = _pending("late", 2), _pending("early", 1)
    early.attempts = 1
    early.tool_calls["t1"] = {"name": "shout", "input": {}, "tool_use_id": "t1", "status": "running"}
    for call in (late, early):
        calls.save(call)
    (calls.directory / "broken.json").write_text("{not json")

    assert calls.load() == [early, late]

    calls.remove("early")
    assert calls.load() == [late]


def test_a_calls_prompt_is_found_by_its_id_and_the_conversation_tells_where_the_call_stopped() -> None:
    prompt = prompt_message("hello", "call-1")
    asking = {"role": "assistant", "content": [{"text": "let me look"}, _use("t1"), _use("t2")]}
    answer = {"role": "assistant", "content": [{"text": "done"}]}

    assert has_prompt([prompt], "call-1") and not has_prompt([prompt], "call-2")
    assert not has_prompt([{"role": "user", "content": [{"text": "hello"}]}], "call-1")  # same text, no mark
    assert [use["toolUseId"] for use in open_tool_uses([prompt, asking])] == ["t1", "t2"]
    assert open_tool_uses([prompt]) == open_tool_uses([]) == open_tool_uses([prompt, answer]) == []
    assert final_answer([prompt, answer]) is answer
    assert final_answer([prompt]) is None and final_answer([prompt, asking]) is None and final_answer([]) is None


def test_after_a_crash_running_tool_calls_are_interrupted_and_every_open_tool_use_gets_a_result() -> None:
    saves: list[int] = []
    records = {
        "t1": {"name": "shout", "input": {"text": "x"}, "tool_use_id": "t1", "status": "ok", "message": "X"},
        "t2": {"name": "shout", "input": {"text": "y"}, "tool_use_id": "t2", "status": "running"},
    }
    call = CallContext(owner=None, call_id="c", records=records, on_change=lambda: saves.append(len(saves)))
    open_uses = [use["toolUse"] for use in (_use("t1"), _use("t2"), _use("t3", name="publish"))]

    results = asyncio.run(SOPGuard("w", {}).interrupted(call, open_uses))

    closed = [(r["toolResult"]["toolUseId"], r["toolResult"]["status"], r["toolResult"]["content"][0]["text"]) for r in results]
    assert closed[0] == ("t1", "success", "X")  # it had finished: the model gets its result
    assert closed[1][:2] == ("t2", "error") and closed[1][2].startswith("Interrupted: the agent's process stopped while shout")
    assert closed[2][:2] == ("t3", "error") and closed[2][2].startswith("Not run: the agent's process stopped before publish")
    assert [(c.tool_use_id, c.status) for c in call.tool_calls()] == [("t1", "ok"), ("t2", "interrupted"), ("t3", "interrupted")]
    assert [c.message for c in call.tool_calls()][1:] == [text for _, _, text in closed[1:]]
    assert saves


def test_a_tool_call_still_running_when_a_call_ends_is_reported_as_interrupted() -> None:
    call = CallContext(owner=None, call_id="c", records={"t1": {"name": "shout", "tool_use_id": "t1", "status": "running"}})
    assert [c.status for c in call.tool_calls()] == ["interrupted"]


def test_an_agent_result_says_whether_the_call_ran_again() -> None:
    assert not AgentResult(text="a", stop_reason="end_turn").rerun
    again = AgentResult(text="a", stop_reason="end_turn", attempts=2)
    assert again.rerun and AgentResult.model_validate(again.model_dump(mode="json")) == again
