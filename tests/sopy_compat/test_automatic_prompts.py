"""SOPy tutorial 5: the SOP prompt in SOPy's layout and words, through SOPy's module names."""

from __future__ import annotations

from sopy_actors.sopy import make_prompt_from_procedure as from_the_top_package
from sopy_actors.sopy.prompt.prompt_generator import (
    ProcedureGraph,
    ProcedureGraphBuilder,
    SOPPromptGenerator,
    make_prompt_from_procedure,
)
from tests.sopy_compat.automatic_prompts import DataValidated, MyStartProcedure
from tests.sopy_compat.file_system import OBJECTIVE, ReadDir

FILE_SYSTEM_PROMPT = """\
Here is the standard operating procedure (SOP) for Migrate files from source to destination with backup safety:
Procedure ReadDir:
    Instruction: Read the directory to be migrated Then proceed to BackUpCopy.
    Action: eReadDirectory
Procedure BackUpCopy:
    Instruction: For each file in the directory, copy it to the given backup location. \
If retry limit is reached, then go to Abort. If all files copied to backup location, then go to MigrateCopy.
    Action: eCopyRequest, eFileCopied
Procedure MigrateCopy:
    Instruction: For each file in the directory, copy it to the migrate location. \
If retry limit is reached, then go to Abort. If all files copied to the migration location, then go to Clear.
    Action: eCopyRequest, eFileCopied
Procedure Abort:
    Instruction: Delete all copied backup files and migrated files (if any), and abort the procedure. \
If backups and partially migrated files are deleted, then finish the procedure, and report related results to the user.
    Action: eFileDeleteRequest, eFileDeleted
Procedure Clear:
    Instruction: Delete the backup files and the original files (not the original directory) and finish the procedure. \
If all files deleted from backup location, then finish the procedure, and report related results to the user.
    Action: eFileDeleteRequest, eFileDeleted"""


def test_the_file_system_example_reads_as_sopys_generator_writes_it() -> None:
    assert make_prompt_from_procedure(ReadDir(), OBJECTIVE) == FILE_SYSTEM_PROMPT
    assert from_the_top_package(ReadDir(), OBJECTIVE) == FILE_SYSTEM_PROMPT


def test_the_tutorials_own_checks_hold_and_the_prompt_is_a_str() -> None:
    objective = "Complete the workflow successfully"
    prompt = make_prompt_from_procedure(MyStartProcedure(), objective)
    assert isinstance(prompt, str)
    assert "Procedure MyStartProcedure:" in prompt
    assert objective in prompt
    assert "Action:" in prompt


def test_cond_descriptions_word_the_branches_and_string_returns_make_no_edge() -> None:
    prompt = make_prompt_from_procedure(MyStartProcedure(), "")
    assert prompt.startswith("Here is the standard operating procedure (SOP):\nProcedure MyStartProcedure:\n")
    assert (
        "    Instruction: Check that the system is ready. If system is ready, then go to ProcessItems. "
        "If not system is ready and too many errors, then go to AbortWork.\n    Action: DataValidated"
    ) in prompt
    start_block = prompt.split("Procedure ProcessItems:")[0]
    assert "Otherwise" not in start_block  # SOPy's code does not write the tutorial's "Otherwise, return error message."
    assert "If processing completed successfully and all items processed, then go to End. Otherwise, go to AbortWork." in prompt


def test_the_graph_builder_and_prompt_generator_give_the_same_text() -> None:
    graph = ProcedureGraphBuilder().build_graph(ReadDir())
    assert isinstance(graph, ProcedureGraph)
    assert SOPPromptGenerator().generate_prompt(graph, OBJECTIVE) == FILE_SYSTEM_PROMPT


def test_an_event_constructor_may_give_a_default_description() -> None:
    assert DataValidated(True).description == "Data validation completed"
    assert DataValidated(False, description="checked by hand").description == "checked by hand"
