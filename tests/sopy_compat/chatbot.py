"""SOPy tutorial 1 (getting started): the chatbot, and the dict-state procedure of "Core Components".

Described from the tutorial and re-implemented; handlers carry no return annotation, as there.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class ChatState(BaseModel):
    messages: list[str] = Field(default_factory=list, description="Chat message history")
    user_name: str = Field(default="", description="User's name if provided")
    conversation_active: bool = Field(default=True, description="Whether conversation is ongoing")


class UserMessage(Event[str]):
    """The user sent a message."""


class UserWantsToExit(Event[bool]):
    """The user wants to end the conversation."""


class Greeting(Procedure[ChatState]):
    prompt = make_prompt("Greet the user and ask for their name")

    @handler
    def handle_user_message(self, state: ChatState, event: UserMessage):
        text = event.payload.lower()
        if "my name is" in text or "i'm" in text or "i am" in text:
            words = text.split()
            if "is" in words and words.index("is") + 1 < len(words):
                state.user_name = words[words.index("is") + 1].capitalize()
            return Chatting()
        return "I'd love to know your name! Please tell me what I should call you."


class Chatting(Procedure[ChatState]):
    prompt = make_prompt("Have a friendly conversation with the user")

    @handler
    def handle_user_message(self, state: ChatState, event: UserMessage):
        state.messages.append(f"User: {event.payload}")
        if any(word in event.payload.lower() for word in ("bye", "goodbye", "exit", "quit")):
            return Farewell()
        return self

    @handler
    def handle_user_wants_to_exit(self, state: ChatState, event: UserWantsToExit):
        return Farewell()


class Farewell(Procedure[ChatState]):
    prompt = make_prompt("Say goodbye to the user warmly")

    @handler
    def handle_user_message(self, state: ChatState, event: UserMessage):
        state.conversation_active = False
        return End()


class UserResponded(Event[str]):
    """The user answered."""


class GreetUser(Procedure[dict]):
    prompt = make_prompt("Greet the user warmly and ask how you can help")

    @handler
    def handle_user_responded(self, state: dict, event: UserResponded):
        state["last_message"] = event.payload
        state["messages"].append(event.payload)
        return ProcessRequest()


class ProcessRequest(Procedure[dict]):
    prompt = make_prompt("Help the user with their request")

    @handler
    def handle_user_responded(self, state: dict, event: UserResponded):
        state["messages"].append(event.payload)
        return End() if event.payload == "thanks" else self
