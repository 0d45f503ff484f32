"""Tools as SOPy writes them, on the actor runtime: SOPy-style use events, refusals, tool methods.

The agent runs in its AgentActor with the offline ScriptedModel; its tool events go to an SOP
on a host actor. Tools log every run to `calls.log`, so "never ran" is checked on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sopy_actors import ScriptedModel, StrandsAgent
from sopy_actors.core.codec import decode_value, encode_value
from sopy_actors.errors import InputError
from tests.support import sopy_tools as s
from tests.support.sopy_tools import calls

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
pytestmark = pytest.mark.usefixtures("runtime")


def _history(handle: Any) -> list[tuple[str, str]]:
    return [(e.event_type, e.outcome) for e in handle.history()]


def _tool_results(agent: StrandsAgent, conversation: str) -> list[tuple[str, str]]:
    """What the model was shown as each tool result: (status, text)."""
    return [
        (block["toolResult"]["status"], block["toolResult"]["content"][0]["text"])
        for message in agent.messages(conversation)
        for block in message["content"]
        if "toolResult" in block
    ]


def test_off_procedure_sopy_style_calls_are_refused_in_sopys_words_and_never_run(tmp_path: Path) -> None:
    source, backup = tmp_path / "files", tmp_path / "backup"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    steps = [
        {"tool": "cp", "input": {"source": "{prompt}/a.txt"}},  # no dest: eCopyRequest cannot be built
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(backup / "a.txt")}},  # before read_dir
        {"tool": "read_dir", "input": {"path": "{prompt}"}},
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(tmp_path / "elsewhere.txt")}},
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(backup / "a.txt")}},
        "done: {result}",
    ]
    agent = StrandsAgent(tools=[s.read_dir, s.cp], model=ScriptedModel(steps), name="sopy-backup")
    handle = s.backup_sop(source, backup).start()

    result = agent(str(source), sop=handle)

    unfit = (
        "Tool call cp does not fit eCopyRequest: TypeError: eCopyRequest.__init__() missing 1 required "
        "positional argument: 'dest'. Call cp with the arguments its schema lists."
    )
    early = (
        f"An error occured in Procedure ReadDir: Read {source} before copying {source}/a.txt.. "
        "Prompt for this procedure is Read the directory to be backed up"
    )
    astray = (
        f"An error occured in Procedure BackUpCopy: Destination {tmp_path}/elsewhere.txt is not in the backup "
        f"directory {backup}.. Prompt for this procedure is Copy every file into the backup directory"
    )
    assert [(c.name, c.status) for c in result.tool_calls] == [
        ("cp", "error"), ("cp", "rejected"), ("read_dir", "ok"), ("cp", "rejected"), ("cp", "ok")
    ]
    assert [c.message for c in result.tool_calls if c.status != "ok"] == [unfit, early, astray]
    assert _tool_results(agent, result.conversation)[:2] == [("error", unfit), ("error", early)]
    # Only the accepted calls ran: one listing, one copy into the backup.
    assert calls(source) == ["read_dir", "cp"]
    assert not (tmp_path / "elsewhere.txt").exists() and (backup / "a.txt").read_text() == "alpha"
    assert handle.result(timeout=60).copied == [f"{source}/a.txt"]
    assert _history(handle) == [
        ("eCopyRequest", "rejected"),
        ("ToolUseRequested", "ignored"),
        ("eReadDirectory", "transitioned"),
        ("eCopyRequest", "rejected"),
        ("eCopyRequest", "stayed"),
        ("eFileCopied", "ended"),
    ]
    assert {entry.sender for entry in handle.history()} == {"sopy-backup"}


def test_tool_methods_of_an_object_run_on_the_agent_actors_copy_of_it(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    steps = [
        {"tool": "query", "input": {"sql": "SELECT 1"}},  # before connect: refused
        {"tool": "connect", "input": {"connection_string": "db://reports"}},
        {"tool": "query", "input": {"sql": "SELECT 1"}},
        "rows: {result}",
    ]
    agent = StrandsAgent(tools=[db.connect, db.query], model=ScriptedModel(steps), name="sopy-db")

    first_sop, second_sop = s.query_sop().start(), s.query_sop().start()
    first = agent("report", sop=first_sop)
    second = agent("report", sop=second_sop)  # another conversation, the same actor and object

    assert [c.status for c in first.tool_calls] == ["rejected", "ok", "ok"]
    assert first.tool_calls[0].message == (
        "An error occured in Procedure Connecting: Connect before running SELECT 1.. "
        "Prompt for this procedure is Connect to the database"
    )
    assert calls(tmp_path) == ["connect", "query", "connect", "query"]  # the refused queries never ran
    # connect and query share the actor's copy of the object, which keeps counting across calls.
    assert first.text == 'rows: ["db://reports #1: SELECT 1"]'
    assert second.text == 'rows: ["db://reports #2: SELECT 1"]'
    assert first_sop.result(timeout=60).rows == ["db://reports #1: SELECT 1"]
    assert _history(first_sop) == [
        ("QueryRequested", "rejected"),
        ("ToolUseRequested", "ignored"),
        ("ConnectionResult", "transitioned"),
        ("QueryRequested", "stayed"),
        ("QueryResult", "ended"),
    ]
    assert (db.connection, db.queries) == (None, 0)  # the caller's object is not the one that ran

    # A handle rebuilt from JSON reaches the running actor, but cannot start one: it lacks the object.
    restored = decode_value(encode_value({"agent": agent}))["agent"]
    assert restored == agent and restored.actor_name() == agent.actor_name()
    assert restored("report", sop=s.query_sop().start()).text == 'rows: ["db://reports #3: SELECT 1"]'
    agent.shutdown()
    with pytest.raises(InputError, match="rebuilt from JSON"):
        restored("report")
