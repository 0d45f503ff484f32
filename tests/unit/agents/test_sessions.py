"""What outlives an agent process: conversations and pending calls on disk, a call's place in its conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from strands import Agent
from strands.session.file_session_manager import FileSessionManager

from sopy_actors.agents import AgentResult, ScriptedModel
from sopy_actors.agents.future import AgentRequest
from sopy_actors.agents.guard import CallContext, SOPGuard
from sopy_actors.agents.sessions import (
    Conversation,
    Conversations,
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


def _strands_agent(script: list[Any], **options: Any) -> Agent:
    return Agent(model=ScriptedModel(script), callback_handler=None, agent_id="writer", **options)


def _texts(messages: list[Any]) -> list[str]:
    return [block["text"] for message in messages for block in message["content"] if "text" in block]


def test_a_saved_conversation_loads_as_last_saved_even_after_a_line_cut_short(tmp_path: Path) -> None:
    conversations = Conversations(tmp_path)
    agent = _strands_agent(["first answer", "second answer"])
    agent.state.set("step", 1)
    asyncio.run(agent.invoke_async("one"))
    conversations.save("c:1", Conversation.of(agent))
    with (conversations.directory / "c_1.jsonl").open("a") as file:
        file.write('\n{"scope": "agent", "schema_ver')  # the process died in the middle of a save
    cut = conversations.load("c:1")
    assert cut is not None and _texts(cut.messages) == ["one", "first answer"]
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}
    asyncio.run(agent.invoke_async([{"role": "user", "content": [{"text": "two"}, image]}]))
    conversations.save("c:1", Conversation.of(agent))

    loaded = conversations.load("c:1")

    assert loaded is not None
    assert _texts(loaded.messages) == ["one", "first answer", "two", "second answer"]
    assert loaded.messages[2]["content"][1]["image"]["source"]["bytes"] == b"\x89PNG"  # bytes survive JSON
    assert conversations.load("never-saved") is None


def test_a_conversation_file_keeps_a_few_saves_and_the_last_one_wins(tmp_path: Path) -> None:
    conversations = Conversations(tmp_path)
    agent = _strands_agent(["answer"])
    for i in range(40):
        asyncio.run(agent.invoke_async(f"prompt {i}"))
        conversations.save("long", Conversation.of(agent))
        saved = conversations.load("long")
        assert saved is not None and saved.messages == agent.messages

    lines = [line for line in (conversations.directory / "long.jsonl").read_text().splitlines() if line]
    assert len(lines) <= 8  # rewritten with the last save alone once it grows


def test_an_agent_that_served_one_conversation_serves_another_with_nothing_of_the_first(tmp_path: Path) -> None:
    agent = _strands_agent(["answer"])
    blank = Conversation.of(agent)
    agent.state.set("owner", "first")
    asyncio.run(agent.invoke_async("first"))
    first = Conversation.of(agent)

    Conversation([], blank.snapshot).load_into(agent)
    asyncio.run(agent.invoke_async("second"))
    assert _texts(agent.messages) == ["second", "answer"] and agent.state.get("owner") is None

    first.load_into(agent)
    assert _texts(agent.messages) == ["first", "answer"] and agent.state.get("owner") == "first"


def test_a_conversation_in_an_earlier_versions_session_files_is_restored(tmp_path: Path) -> None:
    storage = tmp_path / "sessions"
    old = _strands_agent(["old answer"], session_manager=FileSessionManager(session_id="kept", storage_dir=str(storage)))
    asyncio.run(old.invoke_async("old prompt"))
    conversations = Conversations(tmp_path)

    manager = conversations.legacy_session("kept")

    assert manager is not None and conversations.legacy_session("other") is None
    restored = Conversation.of(_strands_agent(["x"], session_manager=manager))
    assert _texts(restored.messages) == ["old prompt", "old answer"]


def test_a_pending_call_saved_many_times_loads_as_last_saved(tmp_path: Path) -> None:
    calls = PendingCalls(tmp_path)
    call = _pending("busy", 1)
    for attempt in range(1, 30):
        call.attempts = attempt
        calls.save(call)
    assert [c.attempts for c in calls.load()] == [29]
