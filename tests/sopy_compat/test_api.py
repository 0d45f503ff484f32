"""SOPy's module layout and names, the EventBus, conjunctions, filters and the rest of the SOP API."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import sopy_actors.errors
import sopy_actors.sopy
import sopy_actors.sopy.core
from sopy_actors.sopy import SOP, End, Event, EventTranslator, Procedure, Prompt, handler, make_prompt, show
from sopy_actors.sopy.core.event import EventBus, subscribe
from sopy_actors.sopy.core.procedure import Sigma
from sopy_actors.sopy.core.sop import Conjunction, SOPRetryExceptionHook, SOPViolation
from sopy_actors.sopy.utils import Log, LogLevel
from tests.sopy_compat.checks import rejected
from tests.sopy_compat.conjunction import AwaitPayment, AwaitShipping, Ledger, Paid, Shipped


def test_the_packages_export_sopys_names() -> None:
    assert sopy_actors.sopy.__all__ == [
        "SOP", "End", "Event", "EventTranslator", "Procedure", "Prompt", "core", "handler", "make_prompt",
        "make_prompt_from_procedure", "show",
    ]
    assert sopy_actors.sopy.core.__all__ == [
        "SOP", "End", "Event", "EventBus", "EventTranslator", "Procedure", "Sigma", "event", "handler", "procedure",
        "show", "sop", "subscribe",
    ]
    from sopy_actors.sopy.core.event import EventTranslator as translator
    from sopy_actors.sopy.interface.strands import (  # noqa: F401
        StrandsAgent,
        ToolDefException,
        eA2A,
        eAIResponse,
        eContentBlock,
        eHumanMessage,
        eToolResult,
        eToolUse,
        tool,
    )
    from sopy_actors.sopy.prompt import cond  # noqa: F401
    from sopy_actors.sopy.prompt.prompt_generator import ProcedureGraphBuilder, SOPPromptGenerator  # noqa: F401

    assert translator is EventTranslator and Sigma.__name__ == "Sigma"
    assert issubclass(SOPViolation, sopy_actors.errors.SOPViolation)


def test_importing_the_sopy_package_imports_neither_ray_nor_strands() -> None:
    code = (
        "import sys, sopy_actors.sopy, sopy_actors.sopy.utils, sopy_actors.sopy.prompt.prompt_generator;"
        "print([m for m in ('ray', 'strands') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_events_print_as_sopy_shows_them_and_end_has_sopys_prompt() -> None:
    assert show(Paid(5, "a payment", "bank", "shop")) == "Paid(sender=bank, target=shop, payload=5)"
    assert str(End().prompt) == "Finish the procedure, and report related results to the user"
    assert str(End(make_prompt("Report the total"))) == "End(Report the total)"
    assert repr(AwaitPayment()) == "AwaitPayment(Wait for the payment)"


def test_the_bus_records_every_event_and_calls_its_subscribers_in_order() -> None:
    heard: list[str] = []

    @subscribe
    def audit_listener(event: Event[Any]) -> None:
        heard.append(f"audit {event.payload}")

    try:
        EventBus.subscribe("second", lambda event: heard.append(f"second {event.payload}"))
        with pytest.raises(ValueError, match=r"^Listener with UID 'second' already exists.$"):
            EventBus.subscribe("second", print)
        event = Shipped("parcel")
        EventBus.push_event(event)
        assert heard == ["audit parcel", "second parcel"]
        assert EventBus.get_trace()[-1] is event and EventBus.func_to_uid[audit_listener] == "audit_listener"
    finally:
        EventBus.unsubscribe("audit_listener")
        EventBus.unsubscribe("second")
    with pytest.raises(ValueError, match=r"^Listener with UID 'second' does not exist.$"):
        EventBus.unsubscribe("second")


def test_every_subscriber_gets_the_event_before_the_first_error_is_raised() -> None:
    heard: list[str] = []

    def failing(event: Event[Any]) -> None:
        raise LookupError("first")

    EventBus.subscribe("failing", failing)
    EventBus.subscribe("after", lambda event: heard.append("after"))
    try:
        with pytest.raises(LookupError, match="first"):
            EventBus.push_event(Shipped("x"))
        assert heard == ["after"]
    finally:
        EventBus.unsubscribe("failing")
        EventBus.unsubscribe("after")


def test_the_event_translator_translates_by_the_annotated_type() -> None:
    @EventTranslator.register()
    def from_receipt(receipt: dict) -> Event[Any]:
        return Paid(receipt["amount"])

    assert EventTranslator.translate({"amount": 3}).payload == 3
    with pytest.raises(sopy_actors.errors.InputError, match="No translator is registered for int"):
        EventTranslator.translate(3)
    with pytest.raises(sopy_actors.errors.InputError, match="exactly one type annotation"):
        EventTranslator.register()(lambda receipt: receipt)


def test_log_writes_sopys_line_format_above_the_minimum_level(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        Log.info("shown")
        Log.debug("hidden at INFO")
        Log.set_min_level(LogLevel.DEBUG)
        Log.debug("shown at DEBUG", include_timestamp=False)
        Log.error("to stderr", include_timestamp=False)
    finally:
        Log.set_min_level(LogLevel.INFO)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].endswith(" [INFO] shown") and len(lines[0]) == len("2025-01-01 00:00:00 [INFO] shown")
    assert lines[1:] == ["[DEBUG] shown at DEBUG"] and err == "[ERROR] to stderr\n"


def test_observes_and_from_agent_add_up_and_from_agent_keeps_sopys_sender_or_target_rule(engine: str) -> None:
    sop = SOP(Ledger(), AwaitShipping()).observes(Shipped).observes(Paid, Shipped).from_agent("courier").from_agent("bank")
    assert sop.obs_events == {Shipped, Paid} and sop.obs_agents == {"courier", "bank"}
    with sop:
        EventBus.push_event(Paid(5))  # neither sender nor target is a governed agent: dropped
        EventBus.push_event(Paid(5, target="bank"))
        EventBus.push_event(Shipped("parcel", sender="courier"))
        assert sop.state.seen == ["paid first", "shipped parcel"]


def test_a_conjunction_gives_every_event_to_each_sop_and_finishes_when_all_do(engine: str) -> None:
    payment = SOP(Ledger(), AwaitPayment()).observes(Paid)
    shipping = SOP(Ledger(), AwaitShipping())
    both = payment & shipping
    assert isinstance(both, Conjunction) and both.sops == [payment, shipping]
    with both:
        with rejected("A payment must be positive."):
            EventBus.push_event(Paid(0))
        assert shipping.state.seen == ["paid first"]  # the rejection by one did not hide the event from the other
        EventBus.push_event(Paid(10))
        both(Shipped("parcel"))  # calling the conjunction gives the event to every member
        assert payment.state.seen == ["paid 0", "paid 10"]
        assert shipping.state.seen == ["paid first", "paid first", "shipped parcel"]
    assert payment.num_retry == 1 and shipping.num_retry == 0


def test_a_conjunction_raises_the_first_unfinished_members_violation_after_leaving_all(engine: str) -> None:
    calls: list[str] = []
    payment = SOP(Ledger(), AwaitPayment(), lambda prompt: calls.append(f"payment: {prompt}"), retry_limits=1)
    shipping = SOP(Ledger(), AwaitShipping(), lambda prompt: calls.append(f"shipping: {prompt}"), retry_limits=1)
    with pytest.raises(SOPViolation, match="current procedure is AwaitShipping"), payment & shipping:
        EventBus.push_event(Paid(3))
    assert calls == ["shipping: SOP left unfinished: current procedure is AwaitShipping with prompt Wait for the parcel to ship."]
    assert payment._id not in EventBus.subscribers and shipping._id not in EventBus.subscribers
    with pytest.raises(TypeError):
        payment & 3
    chained = payment & shipping & SOP(Ledger(), AwaitPayment())
    assert len(chained.sops) == 3


def test_a_block_left_by_an_exception_unsubscribes_so_the_sop_can_run_again(engine: str) -> None:
    sop = SOP(Ledger(), AwaitPayment())
    with pytest.raises(KeyError), sop:
        raise KeyError("boom")
    with sop:  # SOPy would fail here: "Listener with UID ... already exists."
        sop(Paid(1))
    with pytest.raises(SOPViolation), sop, pytest.raises(ValueError, match="already exists"), sop:
        pass  # the inner block never starts, so the outer one is left unfinished


@pytest.mark.parametrize("engine", ["in_process"], indirect=True)  # the handler reaches `holder` in this process
def test_a_handler_cannot_send_its_own_sop_an_event(engine: str) -> None:
    holder: list[SOP[Ledger]] = []

    class Echo(Procedure[Ledger]):
        prompt = make_prompt("Echo")

        @handler
        def handle_paid(self, state: Ledger, event: Paid):
            holder[0](Shipped("from my own handler"))
            return End()

    sop = SOP(Ledger(), Echo())
    holder.append(sop)
    with pytest.raises(SOPRetryExceptionHook, match="a handler of this SOP cannot send it Shipped while it runs"), sop:
        sop(Paid(1))


def test_the_hook_runs_the_error_handler_on_request_and_try_recover_counts_against_the_budget(engine: str) -> None:
    seen: list[Prompt] = []
    sop = SOP(Ledger(), AwaitPayment(), seen.append, retry_limits=1)
    with pytest.raises(SOPViolation), sop:
        with pytest.raises(SOPRetryExceptionHook) as hook:
            sop.try_recover(make_prompt("Check the amount"))
        hook.value.execute()
        assert [str(p) for p in seen] == ["Check the amount"] and sop.num_retry == 1
        with pytest.raises(sopy_actors.errors.RecoveryExhausted):
            sop.try_recover(make_prompt("Again"))
    assert SOPViolation("plain message").last_prompt == "plain message"


def test_ignore_unrecognized_events_is_kept_and_changes_nothing_as_in_sopy(engine: str) -> None:
    sop = SOP(Ledger(), AwaitPayment(), ignore_unrecongnized_events=False)
    assert sop.ignore_unrecongnized_events is False
    with pytest.raises(SOPRetryExceptionHook, match=r"^Event Shipped"), sop:
        sop(Shipped("unhandled in AwaitPayment"))
