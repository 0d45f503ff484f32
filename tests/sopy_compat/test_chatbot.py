"""SOPy tutorial 1: the chatbot driven through the EventBus, and a dict state, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sopy_actors.sopy import SOP, End, Prompt
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from tests.sopy_compat.chatbot import (
    ChatState,
    Chatting,
    Farewell,
    Greeting,
    GreetUser,
    ProcessRequest,
    UserMessage,
    UserResponded,
    UserWantsToExit,
)


def _chatbot(errors: list[str]) -> SOP[ChatState]:
    sop = SOP(state=ChatState(), init_proc=Greeting()).observes(UserMessage, UserWantsToExit)

    def handle_error(prompt: Prompt) -> str:
        errors.append(str(prompt))
        return "I'm sorry, something went wrong. Let me try again."

    return sop.with_recovery(error_handler=handle_error, retry_limits=3)


def test_the_tutorial_loop_runs_the_conversation_to_the_end_while_it_is_active(engine: str) -> None:
    inputs: Iterator[str] = iter(["hello", "My name is alice", "how are you?", "quit", "see you"])
    rejections: list[str] = []
    errors: list[str] = []
    sop = _chatbot(errors)
    seen: list[Any] = []
    with sop:
        while sop.state.conversation_active:
            user_input = next(inputs)
            try:
                if user_input.lower() in ("quit", "exit"):
                    EventBus.push_event(UserWantsToExit(payload=True))
                else:
                    EventBus.push_event(UserMessage(payload=user_input))
            except SOPRetryExceptionHook as hook:
                rejections.append(str(hook))
            seen.append(type(sop.current_proc))
        final = sop.state
    assert rejections == ["I'd love to know your name! Please tell me what I should call you."]
    assert seen == [Greeting, Chatting, Chatting, Farewell, End]
    assert final.user_name == "Alice" and final.conversation_active is False
    assert final.messages == ["User: how are you?"]
    assert errors == []  # SOPy does not call the error handler on rejections, only on an unfinished exit


def test_i_am_moves_on_without_a_name_and_bye_says_farewell(engine: str) -> None:
    sop = _chatbot([])
    with sop:
        sop(UserMessage("i'm bob"))
        assert isinstance(sop.current_proc, Chatting) and sop.state.user_name == ""
        sop(UserMessage("ok, goodbye!"))
        assert isinstance(sop.current_proc, Farewell)
        sop(UserMessage("bye"))


def test_an_event_without_a_handler_is_rejected_with_sopys_text(engine: str) -> None:
    sop = _chatbot([])
    with pytest.raises(SOPRetryExceptionHook) as hook, sop:
        EventBus.push_event(UserWantsToExit(payload=True))
    assert str(hook.value) == (
        "Event UserWantsToExit(sender=None, target=None, payload=True) should not happen in procedure Greeting. "
        "Please try again."
    )


def test_an_unfinished_conversation_calls_the_error_handler_with_the_unfinished_prompt(engine: str) -> None:
    errors: list[str] = []
    sop = _chatbot(errors)
    with pytest.raises(Exception, match="SOP left unfinished"), sop:
        sop(UserMessage("my name is carol"))
    assert errors == [
        "SOP left unfinished: current procedure is Chatting with prompt Have a friendly conversation with the user."
    ] * 3


def test_a_dict_state_is_changed_in_place_by_handlers(engine: str) -> None:
    sop = SOP(state={"messages": []}, init_proc=GreetUser()).observes(UserResponded)
    with sop:
        EventBus.push_event(UserResponded("book a table"))
        assert isinstance(sop.current_proc, ProcessRequest)
        EventBus.push_event(UserResponded("thanks"))
        assert sop.state == {"messages": ["book a table", "thanks"], "last_message": "book a table"}
    assert sop.state == {"messages": []}
