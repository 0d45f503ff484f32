"""The SOP prompt in SOPy's style: SOPy's layout, order, omissions and wording, Actions sorted.

The file-system workflow (tests/support/sopy_fs.py) must read exactly as SOPy's generator writes
it (spec section 4.1); the focused tests define their procedures inside the test, one pattern or
one wording each.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, cond, handler, make_prompt
from sopy_actors.core.graph import ProcedureGraph, make_prompt_from_procedure
from sopy_actors.errors import InputError
from tests.support.sopy_fs import OBJECTIVE, ReadDir

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


class Job(BaseModel):
    attempts: int = Field(default=0, description="the number of attempts")
    done: bool = Field(default=False, description="the job is done")
    label: str = ""


class Asked(Event[int]):
    """A question was asked (payload: its number)."""


class Answered(Event[str | None]):
    """An answer came (payload: the answer, None when there was none)."""


class Checked(Event[bool]):
    """A check ran (payload: whether it passed)."""


def sopy_lines(entry: Procedure[Any], objective: str = "") -> list[str]:
    """The SOPy-style prompt of `entry`, line by line."""
    return make_prompt_from_procedure(entry, objective, style="sopy").split("\n")


def sopy_conditions(entry: Procedure[Any]) -> list[str | None]:
    """The SOPy wording of every edge's condition, in graph order."""
    return [edge.sopy_condition for edge in ProcedureGraph.build(entry).edges]


def test_file_system_operator_reads_as_sopy_writes_it_with_sorted_actions() -> None:
    assert make_prompt_from_procedure(ReadDir(), OBJECTIVE, style="sopy") == FILE_SYSTEM_PROMPT


def test_graph_to_prompt_writes_the_same_sopy_text() -> None:
    assert ProcedureGraph.build(ReadDir()).to_prompt(OBJECTIVE, style="sopy") == FILE_SYSTEM_PROMPT


def test_default_style_is_what_the_prompt_was_without_a_style() -> None:
    default = make_prompt_from_procedure(ReadDir(), OBJECTIVE, style="default")

    assert default == make_prompt_from_procedure(ReadDir(), OBJECTIVE)
    assert default != FILE_SYSTEM_PROMPT


@pytest.mark.parametrize("style", ["SOPy", "fancy", ""])
def test_unknown_style_is_an_input_error_naming_style(style: Any) -> None:
    message = f"style must be 'default' or 'sopy', got {style!r}"

    with pytest.raises(InputError, match=message) as from_graph:
        ProcedureGraph.build(ReadDir()).to_prompt(style=style)
    with pytest.raises(InputError, match=message) as from_entry:
        make_prompt_from_procedure(ReadDir(), style=style)

    assert from_graph.value.fields == from_entry.value.fields == ("style",)


def test_unconditional_step_proceeds_without_a_period_and_the_objective_is_kept_verbatim() -> None:
    class Asking(Procedure[Job]):
        prompt = make_prompt("Ask the question.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Answering()

    class Answering(Procedure[Job]):
        prompt = make_prompt("Answer it")

        @handler
        def on_answered(self, state: Job, event: Answered) -> Procedure[Job]:
            return End()

    assert sopy_lines(Asking(), "  a quiz. ") == [
        "Here is the standard operating procedure (SOP) for   a quiz. :",
        "Procedure Asking:",
        "    Instruction: Ask the question Then proceed to Answering.",
        "    Action: Asked",
        "Procedure Answering:",
        "    Instruction: Answer it Then proceed to End.",
        "    Action: Answered",
    ]


def test_guarded_single_step_names_the_target_prompt_lower_cased_or_finishing() -> None:
    class Asking(Procedure[Job]):
        prompt = make_prompt("Ask the question.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job] | str:
            if cond(event.payload > 0, "the question has a number"):
                return Answering()
            return "Number the question."

    class Answering(Procedure[Job]):
        prompt = make_prompt("Answer It Briefly.")

        @handler
        def on_answered(self, state: Job, event: Answered) -> Procedure[Job] | str:
            if event.payload:
                return End()
            return "Answer something."

    assert sopy_lines(Asking())[1:] == [
        "Procedure Asking:",
        "    Instruction: Ask the question If the question has a number, then answer it briefly..",
        "    Action: Asked",
        "Procedure Answering:",
        "    Instruction: Answer It Briefly If event.payload, then finish the procedure.",
        "    Action: Answered",
    ]


def test_single_step_to_a_procedure_with_the_same_or_no_prompt_adds_no_words() -> None:
    class Silent(Procedure[Job]):
        @handler
        def on_checked(self, state: Job, event: Checked) -> End:
            return End()

    class Asking(Procedure[Job]):
        prompt = make_prompt("Ask.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Again(prompt=make_prompt("Ask."))

    class Again(Procedure[Job]):
        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Silent()

    assert sopy_lines(Asking())[1:] == [
        "Procedure Asking:",
        "    Instruction: Ask.",
        "    Action: Asked",
        "Procedure Again:",
        "    Instruction: Ask.",
        "    Action: Asked",
    ]


def test_branching_lists_guarded_targets_then_otherwise_and_skips_self_loops() -> None:
    class Routing(Procedure[Job]):
        prompt = make_prompt("Route the job.")

        @handler
        def on_checked(self, state: Job, event: Checked) -> Procedure[Job]:
            if cond(not event.payload, "the check failed"):
                return self
            if cond(state.attempts > 3, "it was tried enough"):
                return End()
            if state.done:
                return Archiving()
            if cond(event.payload, "the check passed"):
                return Routing(prompt=make_prompt("Route the job."))
            return Reviewing()

    class Archiving(Procedure[Job]):
        prompt = make_prompt("Archive the job.")

    class Reviewing(Procedure[Job]):
        prompt = make_prompt("Review the job.")

    assert sopy_lines(Routing())[1:4] == [
        "Procedure Routing:",
        "    Instruction: Route the job. If it was tried enough, then go to End. "
        "If the job is done, then go to Archiving. Otherwise, go to Reviewing.",
        "    Action: Checked",
    ]


def test_retry_pattern_says_when_to_try_again_and_when_to_move_on() -> None:
    class Checking(Procedure[Job]):
        prompt = make_prompt("Run the check.")

        @handler
        def on_checked(self, state: Job, event: Checked) -> Procedure[Job]:
            if cond(event.payload, "the check passed"):
                return Publishing()
            if cond(state.attempts < 3, "attempts remain"):
                return self
            return self

        @handler
        def on_answered(self, state: Job, event: Answered) -> Procedure[Job]:
            if event.payload is None:
                return self
            return self

    class Publishing(Procedure[Job]):
        prompt = make_prompt("Publish The Result.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if event.payload == 0:
                return self
            return End()

    assert sopy_lines(Checking())[1:] == [
        "Procedure Checking:",
        "    Instruction: Run the check. If event.payload is None or attempts remain, try again. "
        "If the check passed, then publish the result..",
        "    Action: Answered, Checked",
        "Procedure Publishing:",
        "    Instruction: Publish The Result. If event.payload is 0, try again.",
        "    Action: Asked",
    ]


def test_blank_prompts_and_self_loop_only_procedures_are_left_out_and_cycles_are_kept() -> None:
    class Start(Procedure[Job]):
        prompt = make_prompt("Start.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if event.payload == 1:
                return Blank()
            if event.payload == 2:
                return Waiting()
            return Ping()

    class Blank(Procedure[Job]):
        @handler
        def on_asked(self, state: Job, event: Asked) -> End:
            return End()

    class Waiting(Procedure[Job]):
        prompt = make_prompt("Wait.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return self

    class Ping(Procedure[Job]):
        prompt = make_prompt("Ping.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Pong()

    class Pong(Procedure[Job]):
        prompt = make_prompt("Pong.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Ping()

    assert sopy_lines(Start()) == [  # SOPy drops Ping and Pong (a cycle); they are kept here
        "Here is the standard operating procedure (SOP):",
        "Procedure Start:",
        "    Instruction: Start. If event.payload is 2, then go to Waiting. Otherwise, go to Ping.",
        "    Action: Asked",
        "Procedure Ping:",
        "    Instruction: Ping Then proceed to Pong.",
        "    Action: Asked",
        "Procedure Pong:",
        "    Instruction: Pong Then proceed to Ping.",
        "    Action: Asked",
    ]


def test_procedures_come_in_topological_order_not_breadth_first() -> None:
    class Start(Procedure[Job]):
        prompt = make_prompt("Start.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if event.payload:
                return Late()
            return Early()

    class Early(Procedure[Job]):
        prompt = make_prompt("Early.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            return Late()

    class Late(Procedure[Job]):
        prompt = make_prompt("Late.")

    breadth_first = [node.name for node in ProcedureGraph.build(Start()).nodes]
    written = [line for line in sopy_lines(Start()) if line.startswith("Procedure")]

    assert breadth_first == ["Start", "Late", "Early"]
    assert written == ["Procedure Start:", "Procedure Early:", "Procedure Late:"]


def test_edges_are_taken_in_handler_name_order_as_sopy_lists_handlers() -> None:
    class Base(Procedure[Job]):
        prompt = make_prompt("Work.")

        @handler
        def a_on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if cond(event.payload > 1, "the question is hard"):
                return Helping()
            return self

    class Working(Base):
        @handler
        def b_on_checked(self, state: Job, event: Checked) -> Procedure[Job]:
            if cond(event.payload, "the check passed"):
                return End()
            return self

    class Helping(Procedure[Job]):
        prompt = make_prompt("Help.")

    assert sopy_lines(Working())[2] == (
        "    Instruction: Work. If the question is hard, then go to Helping. If the check passed, then go to End."
    )


def test_action_lists_each_event_of_every_outgoing_edge_once_sorted() -> None:
    class Collecting(Procedure[Job]):
        prompt = make_prompt("Collect.")

        @handler
        def on_result(self, state: Job, event: Checked | Answered) -> Procedure[Job]:
            if cond(state.done, "it is collected"):
                return End()
            return self

        @handler
        def on_asked(self, state: Job, event: Asked) -> str:
            return "Not now."

    class Idle(Procedure[Job]):
        prompt = make_prompt("Idle.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> str:
            return "Not now."

    assert sopy_lines(Collecting())[3] == "    Action: Answered, Checked"
    assert sopy_lines(Idle())[1:] == ["Procedure Idle:", "    Instruction: Idle."]


def test_procedures_are_named_by_class_as_in_sopy() -> None:
    class Drafting(Procedure[Job]):
        prompt = make_prompt("Draft.")

        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if cond(event.payload > 0, "there is more to draft"):
                return Drafting(prompt=make_prompt("Draft again."))
            return End()

    assert [node.name for node in ProcedureGraph.build(Drafting()).nodes] == ["Drafting", "Drafting#2", "End"]
    assert sopy_lines(Drafting())[1:] == [
        "Procedure Drafting:",
        "    Instruction: Draft. If there is more to draft, then go to Drafting. Otherwise, go to End.",
        "    Action: Asked",
        "Procedure Drafting:",
        "    Instruction: Draft again. If there is more to draft, try again.",
        "    Action: Asked",
    ]


def test_comparisons_names_constants_and_attributes_read_as_sopy_words_them() -> None:
    class Comparing(Procedure[Job]):
        limit = 3

        @handler
        def on_answered(self, state: Job, event: Answered) -> Procedure[Job]:
            if state.attempts == 1:
                return self
            if state.attempts != 1:
                return self
            if state.attempts < self.limit:
                return self
            if state.attempts <= 2 < 5:
                return self
            if state.attempts > 2:
                return self
            if state.attempts >= 2:
                return self
            if event.payload is None:
                return self
            if event.payload is not None:
                return self
            if event.payload in ("yes", "no"):
                return self
            if event.payload not in state.label:
                return self
            if state.label == "x":
                return self
            if state.done:
                return self
            if len(state.label):
                return self
            return self

    assert sopy_conditions(Comparing()) == [
        "the number of attempts is 1",
        "the number of attempts is not 1",
        "the number of attempts is less than self.limit",
        "the number of attempts is less than or equal to 2 is less than 5",
        "the number of attempts is greater than 2",
        "the number of attempts is greater than or equal to 2",
        "event.payload is None",
        "event.payload is not None",
        "event.payload is in ('yes', 'no')",
        "event.payload is not in state.label",
        "state.label is 'x'",
        "the job is done",
        "len(state.label)",
        None,
    ]


def test_cond_not_and_or_else_and_elif_read_as_sopy_words_them() -> None:
    class Deciding(Procedure[Job]):
        @handler
        def on_asked(self, state: Job, event: Asked) -> Procedure[Job]:
            if cond(event.payload > 3, "it is urgent"):
                return self
            elif not state.done and (event.payload == 0 or cond(state.attempts > 9, "it keeps failing")):
                return End()
            else:
                return self

    assert sopy_conditions(Deciding()) == [
        "it is urgent",
        "not it is urgent and not the job is done and event.payload is 0 or it keeps failing",
        "not it is urgent and not not the job is done and event.payload is 0 or it keeps failing",
    ]


def test_state_fields_are_described_from_the_procedures_state_model_whatever_the_parameter_name() -> None:
    class Annotated(Procedure[Any]):
        @handler
        def on_checked(self, sigma: Job, event: Checked) -> Procedure[Any]:
            if sigma.done:
                return self
            return End()

    class Declared(Procedure[Job]):
        @handler
        def on_checked(self, sigma: Any, event: Checked) -> Procedure[Job]:
            if sigma.attempts > 0 and event.payload:
                return self
            return End()

    class Derived(Declared):
        pass

    class Untyped(Procedure[Any]):
        @handler
        def on_checked(self, sigma: Any, event: Checked) -> Procedure[Any]:
            if sigma.done:
                return self
            return End()

    assert sopy_conditions(Annotated()) == ["the job is done", None]
    assert sopy_conditions(Declared()) == ["the number of attempts is greater than 0 and event.payload", None]
    assert sopy_conditions(Derived()) == ["the number of attempts is greater than 0 and event.payload", None]
    assert sopy_conditions(Untyped()) == ["sigma.done", None]
