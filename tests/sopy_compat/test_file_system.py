"""SOPy's file_system_operator example (tutorial 8): the migration, its refusals and its abort.

In process and on the actor runtime the tools are driven as SOPy's `@tool` wrapper drives them:
the use event goes to the SOP first (refused: the tool never runs), then the tool runs, then its
result event goes to the SOP. A scripted agent (the offline ScriptedModel) also runs the whole
example on both engines (in this process, and in an agent actor), its off-procedure calls refused
before they run, with the error handler of SOPy's example finishing the work.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sopy_actors.agents import ScriptedModel
from sopy_actors.agents.tools import events_of, result_event, use_event
from sopy_actors.sopy import End, Prompt
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from sopy_actors.sopy.interface.strands import StrandsAgent
from sopy_actors.sopy.prompt.prompt_generator import make_prompt_from_procedure
from tests.sopy_compat.file_system import (
    OBJECTIVE,
    Abort,
    BackUpCopy,
    Clear,
    FileSystemOperator,
    MigrateCopy,
    eCopyRequest,
    eFileCopied,
    eFileDeleted,
    eFileDeleteRequest,
    eReadDirectory,
)
from tests.sopy_compat.file_system_tools import cp, delete, read_dir

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

FILES = ["file_0.txt", "file_1.txt", "file_2.txt"]
_ids = itertools.count()


def _tree(root: Path) -> tuple[str, str, str]:
    """SOPy's setup: three files in `files`, empty `backups` and `migrated_files`."""
    for name in ("files", "backups", "migrated_files"):
        (root / name).mkdir()
    for name in FILES:
        (root / "files" / name).write_text(name)
    return str(root / "files"), str(root / "migrated_files"), str(root / "backups")


def _operator(src: str, dst: str, backup: str) -> FileSystemOperator:
    sop = FileSystemOperator(src, dst, backup)
    return sop.observes(eReadDirectory, eFileDeleteRequest, eFileDeleted, eCopyRequest, eFileCopied)


def call(tool: Any, **tool_input: Any) -> Any:
    """Use a tool as SOPy's wrapper does: use event, then (if accepted) the tool, then its result event."""
    events, tool_use_id = events_of(tool), f"call-{next(_ids)}"
    EventBus.push_event(use_event(events, tool.tool_name, tool_input, sender="driver", tool_use_id=tool_use_id))
    result = tool(**tool_input)
    EventBus.push_event(
        result_event(events, tool.tool_name, json.dumps(result), sender="driver", tool_use_id=tool_use_id, call_id="c")
    )
    return result


def _refused(action: Callable[[], Any]) -> str:
    with pytest.raises(SOPRetryExceptionHook) as hook:
        action()
    return str(hook.value)


def test_the_migration_backs_up_copies_and_clears_and_an_off_procedure_delete_never_runs(engine: str, tmp_path: Path) -> None:
    src, dst, backup = _tree(tmp_path)
    sop = _operator(src, dst, backup)
    with sop:
        call(read_dir, path=src)
        assert isinstance(sop.current_proc, BackUpCopy)
        assert _refused(lambda: call(delete, path=f"{src}/file_0.txt")) == (
            f"Event eFileDeleteRequest(sender=driver, target=None, payload={src}/file_0.txt) should not happen "
            "in procedure BackUpCopy. Please try again."
        )
        assert (tmp_path / "files" / "file_0.txt").exists()  # refused before it ran
        for name in FILES:
            call(cp, source=f"{src}/{name}", dest=f"{backup}/{name}")
        assert isinstance(sop.current_proc, MigrateCopy) and sop.state.files_in_backup == {f"{backup}/{n}" for n in FILES}
        for name in FILES:
            call(cp, source=f"{src}/{name}", dest=f"{dst}/{name}")
        assert isinstance(sop.current_proc, Clear)
        for directory in (backup, src):
            for name in FILES:
                call(delete, path=f"{directory}/{name}")
        assert isinstance(sop.current_proc, End) and sop.num_retry == 1
    assert read_dir(dst)[1] == FILES
    assert read_dir(backup)[1] == []
    assert read_dir(src)[1] == []


def test_copy_requests_are_checked_before_the_copy_runs(engine: str, tmp_path: Path) -> None:
    src, dst, backup = _tree(tmp_path)
    (tmp_path / "elsewhere.txt").write_text("x")
    sop = _operator(src, dst, backup)
    with pytest.raises(Exception, match="SOP left unfinished: current procedure is BackUpCopy"), sop:
        call(read_dir, path=src)
        assert _refused(lambda: call(cp, source=str(tmp_path / "elsewhere.txt"), dest=f"{backup}/x")) == (
            f"An error occurred while handling event eCopyRequest(sender=driver, target=None, "
            f"payload=('{tmp_path}/elsewhere.txt', '{backup}/x')): Source {tmp_path}/elsewhere.txt is not from the "
            f"source path {src}.. Please try again."
        )
        assert not (tmp_path / "backups" / "x").exists()


def test_two_failed_copies_abort_and_abort_deletes_what_was_copied(engine: str, tmp_path: Path) -> None:
    src, dst, backup = _tree(tmp_path)
    sop = _operator(src, dst, backup)
    with sop:
        call(read_dir, path=src)
        call(cp, source=f"{src}/file_0.txt", dest=f"{backup}/file_0.txt")
        for _ in range(2):  # the destination directory does not exist: the copy fails
            assert call(cp, source=f"{src}/file_1.txt", dest=f"{tmp_path}/nowhere/file_1.txt") is None
        assert sop.current_proc.retry == 0
        # SOPy's quirk: the request that finds the retries spent moves to Abort and is accepted,
        # so the copy runs, and its result then arrives in Abort, which has no handler for it.
        assert _refused(lambda: call(cp, source=f"{src}/file_2.txt", dest=f"{backup}/file_2.txt")) == (
            f"Event eFileCopied(sender=driver, target=driver, payload=('{src}/file_2.txt', '{backup}/file_2.txt')) "
            "should not happen in procedure Abort. Please try again."
        )
        assert isinstance(sop.current_proc, Abort)
        assert _refused(lambda: call(delete, path=f"{src}/file_0.txt")) == (
            f"File {src}/file_0.txt is not from the backup or migration path. Cannot delete."
        )
        call(delete, path=f"{backup}/file_0.txt")
        assert isinstance(sop.current_proc, End)
    assert read_dir(src)[1] == FILES and read_dir(dst)[1] == []
    assert read_dir(backup)[1] == ["file_2.txt"]  # the copy Abort never heard of stays


def test_a_scripted_agent_runs_the_example_and_the_error_handler_finishes_it(engine: str, tmp_path: Path) -> None:
    src, dst, backup = _tree(tmp_path)
    sop = _operator(src, dst, backup)
    prompt = make_prompt_from_procedure(sop.init_proc, OBJECTIVE)
    copies = [{"tool": "cp", "input": {"source": f"{src}/{n}", "dest": f"{to}/{n}"}} for to in (backup,) for n in FILES]
    migrations = [{"tool": "cp", "input": {"source": f"{src}/{n}", "dest": f"{dst}/{n}"}} for n in FILES]
    deletions = [{"tool": "delete", "input": {"path": f"{d}/{n}"}} for d in (backup, src) for n in FILES]
    script = [
        {"tool": "read_dir", "input": {"path": src}},
        {"tool": "delete", "input": {"path": f"{src}/file_0.txt"}},  # off-procedure: refused, never runs
        *copies,
        "Backed up: {result}",  # the first call stops here, before the migration
        *migrations,
        *deletions,
        "Done: {result}",
    ]
    agent = StrandsAgent(tools=[read_dir, cp, delete], system_prompt=prompt, model=ScriptedModel(script), name="fs-operator")
    recoveries: list[str] = []

    def error_handler(prompt: Prompt) -> Any:
        recoveries.append(str(prompt))
        return agent(f"Error occurred: {prompt}")

    sop = sop.with_recovery(error_handler=error_handler, retry_limits=3)
    current_files = read_dir(src)[1]
    with sop:
        first = agent(f"Move all files from {src} to {dst} with backup at {backup} using given tools only.")
        assert (tmp_path / "files" / "file_0.txt").exists()  # the refused delete never ran
        assert isinstance(sop.current_proc, MigrateCopy)
    assert [(c.name, c.status) for c in first.tool_calls][:2] == [("read_dir", "ok"), ("delete", "rejected")]
    assert first.agent == "fs-operator"
    assert str(first) == f"Backed up: {json.dumps([f'{src}/file_2.txt', f'{backup}/file_2.txt'])}"
    assert first.tool_calls[1].message == (
        f"An error occured in Procedure BackUpCopy: Event eFileDeleteRequest(sender=fs-operator, target=None, "
        f"payload={src}/file_0.txt) should not happen in procedure BackUpCopy. Please try again.. Prompt for this "
        "procedure is For each file in the directory, copy it to the given backup location."
    )
    assert recoveries == [
        "SOP left unfinished: current procedure is MigrateCopy with prompt For each file in the directory, copy it "
        "to the migrate location.."  # SOPy's period after a prompt that ends with one
    ]
    assert read_dir(dst)[1] == current_files
    assert read_dir(backup)[1] == []
    assert read_dir(src)[1] == []


def test_an_agent_is_shown_the_sopy_refusal_and_the_refused_tools_never_run(engine: str, tmp_path: Path) -> None:
    src, dst, backup = _tree(tmp_path)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("x")
    script = [
        {"tool": "read_dir", "input": {"path": src}},
        {"tool": "delete", "input": {"path": f"{src}/file_0.txt"}},  # off-procedure in BackUpCopy
        {"tool": "cp", "input": {"source": str(elsewhere), "dest": f"{backup}/x"}},  # not from the source path
        "Refused: {result}",  # what the model was shown for the last tool call
    ]
    agent = StrandsAgent(tools=[read_dir, cp, delete], model=ScriptedModel(script), name="fs-refused")
    sop = _operator(src, dst, backup)
    with pytest.raises(Exception, match="SOP left unfinished: current procedure is BackUpCopy"), sop:
        result = agent("Migrate the files")
        assert sop.num_retry == 2 and isinstance(sop.current_proc, BackUpCopy)
    assert [(c.name, c.status) for c in result.tool_calls] == [("read_dir", "ok"), ("delete", "rejected"), ("cp", "rejected")]
    instruction = "Prompt for this procedure is For each file in the directory, copy it to the given backup location."
    assert result.tool_calls[1].message == (
        f"An error occured in Procedure BackUpCopy: Event eFileDeleteRequest(sender=fs-refused, target=None, "
        f"payload={src}/file_0.txt) should not happen in procedure BackUpCopy. Please try again.. {instruction}"
    )
    refusal = (
        f"An error occured in Procedure BackUpCopy: An error occurred while handling event eCopyRequest(sender=fs-refused, "
        f"target=None, payload=('{elsewhere}', '{backup}/x')): Source {elsewhere} is not from the source path {src}.. "
        f"Please try again.. {instruction}"
    )
    assert result.tool_calls[2].message == refusal
    assert str(result) == f"Refused: {refusal}"  # the model was shown SOPy's refusal
    assert read_dir(src)[1] == FILES and read_dir(backup)[1] == []  # neither refused tool ran
