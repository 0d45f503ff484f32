"""The procedure graph read from handler code: prompt text, Mermaid, JSON data and validation.

The module-level procedures form one realistic workflow (the graph of `Triage()` considers every
procedure class of this module, so `Archive` is unreachable). Focused tests define their
procedures inside the test, where only the classes passed as `extra` are considered.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, Prompt, cond, handler, make_prompt
from sopy_actors.core.graph import ProcedureGraph, make_prompt_from_procedure
from sopy_actors.errors import InputError

SHARED_PROMPT = make_prompt("Use the shared prompt.")


class Ticket(BaseModel):
    severity: int = 0
    attempts: int = 0
    fixes: list[str] = Field(default_factory=list)


class Triaged(Event[int]):
    """The ticket's severity was rated."""


class Escalated(Event[str]):
    """The ticket was handed to a human, by this channel."""


class FixProposed(Event[str]):
    """A fix was proposed."""


class ChecksPassed(Event[int]):
    """The checks passed (payload: how many)."""


class ChecksFailed(Event[str]):
    """The checks failed (payload: the failure)."""


class ReviewDone(Event[bool]):
    """A reviewer decided (payload: approved)."""


class Triage(Procedure[Ticket]):
    prompt = make_prompt("Read the ticket and rate its severity.")

    @handler
    def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
        state.severity = event.payload
        if cond(event.payload >= 3, "the severity is 3 or more"):
            return Escalate()
        return Fix()


class Escalate(Procedure[Ticket]):
    prompt = make_prompt("Escalate the ticket to the on-call engineer.")

    @handler
    def on_escalated(self, state: Ticket, event: Escalated) -> Procedure[Ticket]:
        if cond(event.payload == "pager", "the engineer was paged") and state.severity > 4:
            return AwaitEngineer()
        return self.route(event)

    def route(self, event: Escalated) -> Procedure[Ticket]:
        return Fix()


class Fix(Procedure[Ticket]):
    prompt = make_prompt(
        """
        Propose a fix for the ticket.
        Keep it small.
        """
    )

    @handler
    def on_fix_proposed(self, state: Ticket, event: FixProposed) -> Procedure[Ticket] | str:
        if cond(not event.payload.strip(), "the fix is empty"):
            return "Propose a fix that changes something."
        state.fixes.append(event.payload)
        return Verify()


class AwaitEngineer(Procedure[Ticket]):
    prompt = make_prompt("Wait for the engineer's review.")

    @handler
    def on_review_done(self, state: Ticket, event: ReviewDone) -> Procedure[Ticket]:
        return self


class Verify(Procedure[Ticket]):
    prompt = make_prompt("Run the checks.")

    @handler
    def on_result(self, state: Ticket, event: ChecksPassed | ChecksFailed) -> Procedure[Ticket]:
        if isinstance(event, ChecksPassed):
            return Review()
        state.attempts += 1
        if cond(state.attempts >= 3, "the checks failed three times"):
            return Review(
                prompt=make_prompt("Review the failing fix and decide whether to ship it.")
            )
        if cond(state.attempts == 1, "this was the first failure"):
            return self
        return Fix()


class Review(Procedure[Ticket]):
    prompt = make_prompt("Review the fix.")

    @handler
    def on_review_done(self, state: Ticket, event: ReviewDone) -> Procedure[Ticket]:
        if cond(event.payload, "the reviewer approves"):
            return End()
        elif state.attempts > 5:
            return End(prompt=make_prompt("Stop: too many attempts."))
        else:
            return Fix()


class Archive(Procedure[Ticket]):
    prompt = make_prompt("Archive the ticket.")

    @handler
    def on_review_done(self, state: Ticket, event: ReviewDone) -> Procedure[Ticket]:
        return End()


def where(function: Callable[..., Any], text: str) -> str:
    """file:line of the first line of `function` containing `text`."""
    lines, first = inspect.getsourcelines(function)
    offset = next(index for index, line in enumerate(lines) if text in line)
    return f"{function.__code__.co_filename}:{first + offset}"


REVIEW_SENTENCES = (
    "If the reviewer approves, then finish the procedure. "
    "If not the reviewer approves and state.attempts > 5, then finish the procedure. "
    "If not the reviewer approves and not state.attempts > 5, then go to Fix."
)

TICKET_PROMPT = "\n".join(
    [
        "Here is the standard operating procedure (SOP) for fixing a bug ticket:",
        "Procedure Triage:",
        "    Instruction: Read the ticket and rate its severity. "
        "If the severity is 3 or more, then go to Escalate. Then proceed to Fix.",
        "    Action: Triaged",
        "",
        "Procedure Escalate:",
        "    Instruction: Escalate the ticket to the on-call engineer. "
        "If the engineer was paged and state.severity > 4, then go to AwaitEngineer.",
        "    Action: Escalated",
        "",
        "Procedure Fix:",
        "    Instruction: Propose a fix for the ticket.",
        "        Keep it small. Then proceed to Verify.",
        "    Action: FixProposed",
        "",
        "Procedure AwaitEngineer:",
        "    Instruction: Wait for the engineer's review.",
        "    Action: ReviewDone",
        "",
        "Procedure Verify:",
        "    Instruction: Run the checks. "
        "If isinstance(event, ChecksPassed), then go to Review. "
        "If the checks failed three times, then go to Review#2. "
        "If this was the first failure, stay in this procedure. "
        "Then proceed to Fix.",
        "    Action: ChecksPassed, ChecksFailed",
        "",
        "Procedure Review:",
        f"    Instruction: Review the fix. {REVIEW_SENTENCES}",
        "    Action: ReviewDone",
        "",
        "Procedure Review#2:",
        "    Instruction: Review the failing fix and decide whether to ship it. "
        f"{REVIEW_SENTENCES}",
        "    Action: ReviewDone",
    ]
)

TICKET_MERMAID = """\
stateDiagram-v2
    state "Review#2" as Review_2
    [*] --> Triage
    Triage --> Escalate: Triaged [the severity is 3 or more]
    Triage --> Fix: Triaged
    Escalate --> AwaitEngineer: Escalated [the engineer was paged and state.severity > 4]
    Fix --> Verify: FixProposed
    AwaitEngineer --> AwaitEngineer: ReviewDone
    Verify --> Review: ChecksPassed [isinstance(event, ChecksPassed)]
    Verify --> Review: ChecksFailed [isinstance(event, ChecksPassed)]
    Verify --> Review_2: ChecksPassed [the checks failed three times]
    Verify --> Review_2: ChecksFailed [the checks failed three times]
    Verify --> Verify: ChecksPassed [this was the first failure]
    Verify --> Verify: ChecksFailed [this was the first failure]
    Verify --> Fix: ChecksPassed
    Verify --> Fix: ChecksFailed
    Review --> [*]: ReviewDone [the reviewer approves]
    Review --> [*]: ReviewDone [not the reviewer approves and state.attempts > 5]
    Review --> Fix: ReviewDone [not the reviewer approves and not state.attempts > 5]
    Review_2 --> [*]: ReviewDone [the reviewer approves]
    Review_2 --> [*]: ReviewDone [not the reviewer approves and state.attempts > 5]
    Review_2 --> Fix: ReviewDone [not the reviewer approves and not state.attempts > 5]"""


def test_ticket_workflow_prompt_is_written_exactly() -> None:
    assert make_prompt_from_procedure(Triage(), "fixing a bug ticket") == TICKET_PROMPT


def test_ticket_workflow_mermaid_is_drawn_exactly() -> None:
    assert ProcedureGraph.build(Triage()).to_mermaid() == TICKET_MERMAID


def test_ticket_workflow_validation_reports_every_problem_at_once() -> None:
    validation = ProcedureGraph.build(Triage()).validate()

    assert validation.errors == [
        "procedure Archive is unreachable from the entry Triage: no reachable handler returns it",
        "procedure AwaitEngineer has no path to End: no chain of transitions from it reaches "
        "a return of End()",
    ]
    assert validation.warnings == [
        f"{where(Escalate.on_escalated, 'return self.route(event)')}: handler "
        "Escalate.on_escalated returns self.route(event), which cannot be resolved statically; "
        "its transition is left out of the graph (return a procedure instance such as Next(), "
        "self, End() or a str)"
    ]
    assert not validation.ok


def test_ticket_workflow_nodes_are_in_breadth_first_order_with_the_reused_class_numbered() -> None:
    graph = ProcedureGraph.build(Triage())

    assert [(node.name, node.procedure, node.prompt) for node in graph.nodes] == [
        ("Triage", Triage, "Read the ticket and rate its severity."),
        ("Escalate", Escalate, "Escalate the ticket to the on-call engineer."),
        ("Fix", Fix, "Propose a fix for the ticket.\nKeep it small."),
        ("AwaitEngineer", AwaitEngineer, "Wait for the engineer's review."),
        ("Verify", Verify, "Run the checks."),
        ("Review", Review, "Review the fix."),
        ("Review#2", Review, "Review the failing fix and decide whether to ship it."),
        ("End", End, "Finish the procedure."),
    ]
    assert graph.entry.name == "Triage"


def test_ticket_workflow_as_data_lists_nodes_edges_and_problems() -> None:
    data = ProcedureGraph.build(Triage()).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["entry"] == "Triage"
    assert data["nodes"][0] == {
        "id": "Triage",
        "class": f"{__name__}.Triage",
        "prompt": "Read the ticket and rate its severity.",
    }
    assert data["edges"][0] == {
        "from": "Triage",
        "to": "Escalate",
        "events": ["Triaged"],
        "condition": "the severity is 3 or more",
        "handler": "on_triaged",
    }
    assert len(data["edges"]) == 15
    validation = ProcedureGraph.build(Triage()).validate()
    assert data["problems"] == {"errors": validation.errors, "warnings": validation.warnings}


def test_entry_prompt_comes_from_the_instance_passed_in() -> None:
    graph = ProcedureGraph.build(Review(prompt="Review the hotfix"))

    assert graph.entry == graph.nodes[0]
    assert [(node.name, node.prompt) for node in graph.nodes if node.procedure is Review] == [
        ("Review", "Review the hotfix"),
        ("Review#2", "Review the fix."),
        ("Review#3", "Review the failing fix and decide whether to ship it."),
    ]


def test_union_handler_produces_an_edge_for_both_events() -> None:
    class Checking(Procedure[Ticket]):
        prompt = make_prompt("Check.")

        @handler
        def on_result(self, state: Ticket, event: ChecksPassed | ChecksFailed) -> End:
            return End()

    graph = ProcedureGraph.build(Checking())

    assert [(e.source.name, e.target.name, e.events) for e in graph.edges] == [
        ("Checking", "End", (ChecksPassed, ChecksFailed))
    ]
    assert graph.to_mermaid().splitlines()[-2:] == [
        "    Checking --> [*]: ChecksPassed",
        "    Checking --> [*]: ChecksFailed",
    ]


def test_every_end_whatever_its_prompt_is_the_one_end_node() -> None:
    class Closing(Procedure[Ticket]):
        prompt = make_prompt("Close the ticket.")

        @handler
        def on_review_done(self, state: Ticket, event: ReviewDone) -> End:
            if cond(event.payload, "the ticket is fixed"):
                return End(prompt="Closed as fixed.")
            return End(prompt=make_prompt("Closed as won't fix."))

    graph = ProcedureGraph.build(Closing())

    assert [node.name for node in graph.nodes] == ["Closing", "End"]
    assert graph.to_prompt() == "\n".join(
        [
            "Here is the standard operating procedure (SOP):",
            "Procedure Closing:",
            "    Instruction: Close the ticket. If the ticket is fixed, then finish the "
            "procedure. Then finish the procedure.",
            "    Action: ReviewDone",
        ]
    )
    assert graph.validate().ok


def test_loop_without_a_path_to_end_is_an_error_for_each_procedure_in_it() -> None:
    class Ping(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
            return Pong()

    class Pong(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
            if cond(event.payload > 1, "the severity is above 1"):
                return Ping()
            return self

    assert ProcedureGraph.build(Ping()).validate().errors == [
        "procedure Ping has no path to End: no chain of transitions from it reaches a return of "
        "End()",
        "procedure Pong has no path to End: no chain of transitions from it reaches a return of "
        "End()",
    ]


def test_procedure_with_an_unresolved_return_may_reach_end_so_only_a_warning_is_given() -> None:
    class Routing(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
            next_step = End()
            return next_step

    validation = ProcedureGraph.build(Routing()).validate()

    assert validation.errors == []
    assert validation.warnings == [
        f"{where(Routing.on_triaged, 'return next_step')}: handler Routing.on_triaged returns "
        "next_step, which cannot be resolved statically; its transition is left out of the graph "
        "(return a procedure instance such as Next(), self, End() or a str)"
    ]
    assert validation.ok


def test_else_branches_and_conditional_expressions_read_as_negated_conditions() -> None:
    class Reworking(Procedure[Ticket]):
        pass

    class Deciding(Procedure[Ticket]):
        @handler
        def on_review_done(self, state: Ticket, event: ReviewDone) -> Procedure[Ticket]:
            if not cond(event.payload, "the change is approved"):
                return Reworking() if cond(state.attempts < 3, "attempts remain") else End()
            elif cond(state.severity > 2, "it is urgent") or state.attempts == 0:
                return End()
            return self

    conditions = [e.condition for e in ProcedureGraph.build(Deciding()).edges]

    assert conditions == [
        "not the change is approved and attempts remain",
        "not the change is approved and not attempts remain",
        "the change is approved and (it is urgent or state.attempts == 0)",
        None,
    ]


def test_prompt_arguments_in_every_static_form_give_the_target_node_its_prompt() -> None:
    class Fanning(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
            if event.payload == 1:
                return Fix(prompt="  Fix it by hand.  ")
            if event.payload == 2:
                return Fix(prompt=Prompt("  Keep the spaces. "))
            if event.payload == 3:
                return Fix(prompt=SHARED_PROMPT)
            return Fix(prompt=None)

    prompts = [(n.name, n.prompt) for n in ProcedureGraph.build(Fanning()).nodes[1:5]]

    assert prompts == [
        ("Fix", "Fix it by hand."),
        ("Fix#2", "  Keep the spaces. "),
        ("Fix#3", "Use the shared prompt."),
        ("Fix#4", "Propose a fix for the ticket.\nKeep it small."),
    ]


def test_prompt_that_cannot_be_read_statically_is_a_warning_and_the_class_prompt_is_used() -> None:
    class Delegating(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket]:
            return Review(prompt=f"Review severity {event.payload}")

    graph = ProcedureGraph.build(Delegating())

    assert graph.nodes[1].prompt == "Review the fix."
    assert graph.warnings == (
        f"{where(Delegating.on_triaged, 'return Review(')}: handler Delegating.on_triaged passes "
        "prompt=f'Review severity {event.payload}' to Review, which cannot be resolved "
        "statically; the graph uses Review's class prompt",
    )


def test_handler_without_source_code_is_a_warning_and_keeps_its_procedure_open() -> None:
    namespace: dict[str, Any] = {"Procedure": Procedure, "handler": handler, "Triaged": Triaged}
    exec(
        "class Generated(Procedure):\n"
        "    @handler\n"
        "    def on_triaged(self, state, event: Triaged):\n"
        "        return self\n",
        namespace,
    )

    validation = ProcedureGraph.build(namespace["Generated"]()).validate()

    assert validation.errors == []
    assert validation.warnings == [
        "<string>:2: handler Generated.on_triaged: source code cannot be read (OSError: could "
        "not get source code); its transitions are left out of the graph"
    ]


def test_handler_returning_a_flush_left_string_is_read_with_the_right_line_numbers() -> None:
    class Strict(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> Procedure[Ticket] | str:
            if event.payload < 0:
                return """
Rate the ticket from 0 to 5.
"""
            if cond(event.payload > 5, "the rating is off the scale"):
                fallback: Procedure[Ticket] = End()
                return fallback
            return End()

    graph = ProcedureGraph.build(Strict())

    assert [(e.target.name, e.condition) for e in graph.edges] == [("End", None)]
    assert graph.warnings == (
        f"{where(Strict.on_triaged, 'return fallback')}: handler Strict.on_triaged returns "
        "fallback, which cannot be resolved statically; its transition is left out of the "
        "graph (return a procedure instance such as Next(), self, End() or a str)",
    )


def test_unreachable_extra_procedures_are_reported_but_shared_base_classes_are_not() -> None:
    class Base(Procedure[Ticket]):
        prompt = make_prompt("Shared base.")

    class Start(Base):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> End:
            return End()

    class Forgotten(Procedure[Ticket]):
        pass

    graph = ProcedureGraph.build(Start(), extra=[Base, Start, Forgotten])

    assert graph.unreachable == (Forgotten,)
    assert graph.validate().errors == [
        "procedure Forgotten is unreachable from the entry Start: no reachable handler returns it"
    ]


def test_mermaid_labels_escape_the_characters_that_break_a_transition() -> None:
    class Labelled(Procedure[Ticket]):
        @handler
        def on_triaged(self, state: Ticket, event: Triaged) -> End | str:
            if cond(event.payload > 1, "severity: high; page someone"):
                return End()
            return "Rate it again."

    assert ProcedureGraph.build(Labelled()).to_mermaid().splitlines()[-1] == (
        "    Labelled --> [*]: Triaged [severity#58; high#59; page someone]"
    )


def test_prompt_keeps_its_question_mark_and_has_no_action_line_without_handlers() -> None:
    class Asking(Procedure[Ticket]):
        prompt = make_prompt("Is the ticket a duplicate?")

    assert make_prompt_from_procedure(Asking(), "triage.") == "\n".join(
        [
            "Here is the standard operating procedure (SOP) for triage:",
            "Procedure Asking:",
            "    Instruction: Is the ticket a duplicate?",
        ]
    )


@pytest.mark.parametrize("entry", [Triage, End(), "Triage"])
def test_build_refuses_an_entry_that_is_not_a_procedure_instance(entry: Any) -> None:
    with pytest.raises(InputError, match="The entry must be a procedure instance other than End"):
        ProcedureGraph.build(entry)


def test_build_refuses_extra_entries_that_are_not_procedure_classes() -> None:
    with pytest.raises(InputError, match="extra must hold Procedure subclasses"):
        ProcedureGraph.build(Triage(), extra=[Triage()])  # type: ignore[list-item]


def test_a_declared_recovery_fallback_is_a_recovery_edge_that_makes_its_target_reachable() -> None:
    from tests.support import recovering

    graph = ProcedureGraph.build(recovering.RetryThenFallback())
    assert [(edge.source.name, edge.target.name) for edge in graph.recovery_edges] == [
        ("RetryThenFallback", "CheapSummary")
    ]
    assert not [error for error in graph.validate().errors if "CheapSummary" in error]  # (other SOPs of the module are reported)
    assert "    RetryThenFallback --> CheapSummary: fallback (recovery)" in graph.to_mermaid().splitlines()
    assert graph.to_dict()["recovery_edges"] == [{"from": "RetryThenFallback", "to": "CheapSummary"}]
