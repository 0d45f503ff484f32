"""Procedure definitions: dispatch by annotation, definition errors listed at once."""

from __future__ import annotations

from typing import Union

import pytest
from pydantic import BaseModel

from sopy_actors import End, Event, Procedure, Prompt, cond, handler, make_prompt
from sopy_actors.errors import DefinitionError


class S(BaseModel):
    n: int = 0


class Ping(Event[int]):
    pass


class Pong(Event[int]):
    pass


class LoudPing(Ping):
    pass


def test_handler_dispatch_follows_the_event_annotation() -> None:
    class Both(Procedure[S]):
        @handler
        def on_either(self, state: S, event: Ping | Pong) -> Procedure[S]:
            return self

    assert Both.sop_handler_for(Ping) == "on_either"
    assert Both.sop_handler_for(Pong) == "on_either"


def test_typing_union_and_event_subclasses_dispatch_to_the_base_handler() -> None:
    class Old(Procedure[S]):
        @handler
        def on_any(self, state: S, event: Union[Ping, Pong]) -> Procedure[S]:  # noqa: UP007
            return self

    assert Old.sop_handler_for(LoudPing) == "on_any"


def test_all_definition_problems_are_listed_in_one_error() -> None:
    with pytest.raises(DefinitionError) as info:

        class Broken(Procedure[S]):
            @handler
            def no_annotation(self, state, event):  # type: ignore[no-untyped-def]
                return self

            @handler
            def not_an_event(self, state: S, event: int) -> Procedure[S]:
                return self

            @handler
            def first(self, state: S, event: Ping) -> Procedure[S]:
                return self

            @handler
            def second(self, state: S, event: Ping) -> Procedure[S]:
                return self

    message = str(info.value)
    assert message.startswith("Invalid procedure Broken for 3 reasons:")
    assert "no_annotation has no annotation on 'event'" in message
    assert "not_an_event: annotation <class 'int'> is not an Event subclass" in message
    assert "two handlers for Ping: first and second" in message
    assert len(info.value.problems) == 3


def test_async_handlers_and_wrong_arity_are_definition_errors() -> None:
    with pytest.raises(DefinitionError) as info:

        class Bad(Procedure[S]):
            @handler
            async def later(self, state: S, event: Ping) -> Procedure[S]:
                return self

            @handler
            def short(self, event: Ping) -> Procedure[S]:
                return self

    assert len(info.value.problems) == 2


def test_prompt_must_be_a_prompt() -> None:
    with pytest.raises(DefinitionError, match="prompt must be a Prompt"):

        class Plain(Procedure[S]):
            prompt = "do things"  # type: ignore[assignment]


def test_instance_prompt_overrides_the_class_prompt() -> None:
    class Step(Procedure[S]):
        prompt = make_prompt("Default.")

    assert str(Step().prompt) == "Default."
    assert Step(prompt=make_prompt("  Special.\n")).prompt == Prompt("Special.")
    assert Step(prompt="Text").prompt == Prompt("Text")


def test_make_prompt_dedents_and_strips() -> None:
    assert make_prompt("""
        Line one.
          Line two.
    """).text == "Line one.\n  Line two."


def test_cond_returns_its_value() -> None:
    assert cond(5, "five") == 5
    assert cond(False, "never") is False


def test_end_is_a_procedure_with_a_prompt() -> None:
    assert isinstance(End(), Procedure)
    assert str(End(prompt="Done.").prompt) == "Done."
