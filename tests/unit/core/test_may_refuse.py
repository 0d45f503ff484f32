"""`may_refuse`: whether a procedure may refuse an event, read from its handler's code."""

from __future__ import annotations

from pydantic import BaseModel

from sopy_actors import End, Event, Procedure, handler
from sopy_actors.core.graph import may_refuse


class Notes(BaseModel):
    items: list[str] = []


class Added(Event[str]):
    pass


class Checked(Event[str]):
    pass


class Noted(Event[str]):
    sop_optional = True


class Pinged(Event[str]):
    pass


class Done(Procedure[Notes]):
    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:
        return End()


class Taking(Procedure[Notes]):
    ignore = (Pinged,)

    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:
        state.items.append(event.payload)
        if len(state.items) > 3:
            return Done()
        return self


class Checking(Procedure[Notes]):
    @handler
    def on_checked(self, state: Notes, event: Checked) -> Procedure[Notes] | str:
        if not event.payload:
            return "Give a non-empty value."
        return self


class Asserting(Procedure[Notes]):
    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:
        assert event.payload
        return self


class Raising(Procedure[Notes]):
    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:
        if event.payload == "x":
            raise ValueError("no x")
        return self


class FallingThrough(Procedure[Notes]):
    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:  # type: ignore[return]
        if event.payload:
            return self


class Dynamic(Procedure[Notes]):
    @handler
    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:
        answer: Procedure[Notes] = self
        return answer


def test_a_handler_returning_only_procedures_on_every_path_never_refuses() -> None:
    assert may_refuse(Taking, Added) is False


def test_events_a_procedure_ignores_are_never_refused_and_unhandled_ones_are() -> None:
    assert may_refuse(Taking, Pinged) is False  # in the class's ignore
    assert may_refuse(Taking, Noted) is False  # optional: ignored without a handler
    assert may_refuse(Taking, Checked) is True  # no handler: rejected


def test_a_recovery_prompt_a_raise_an_assert_a_missing_return_or_an_unread_return_may_refuse() -> None:
    assert may_refuse(Checking, Checked) is True
    assert may_refuse(Asserting, Added) is True
    assert may_refuse(Raising, Added) is True
    assert may_refuse(FallingThrough, Added) is True
    assert may_refuse(Dynamic, Added) is True


def test_end_refuses_everything() -> None:
    assert may_refuse(End, Added) is True


def test_a_handler_whose_source_cannot_be_read_may_refuse() -> None:
    namespace: dict[str, object] = {"Procedure": Procedure, "Notes": Notes, "Added": Added, "handler": handler}
    exec(  # no file holds this source: inspect cannot read it back
        "class Unread(Procedure[Notes]):\n"
        "    @handler\n"
        "    def on_added(self, state: Notes, event: Added) -> Procedure[Notes]:\n"
        "        return self\n",
        namespace,
    )
    assert may_refuse(namespace["Unread"], Added) is True  # type: ignore[arg-type]
