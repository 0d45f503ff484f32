"""Two small SOPs for the conjunction and bus tests: an order must be paid, and shipped."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class Ledger(BaseModel):
    seen: list[str] = Field(default_factory=list)


class Paid(Event[int]):
    pass


class Shipped(Event[str]):
    pass


class AwaitPayment(Procedure[Ledger]):
    prompt = make_prompt("Wait for the payment")

    @handler
    def handle_paid(self, state: Ledger, event: Paid):
        state.seen.append(f"paid {event.payload}")
        if event.payload <= 0:
            return "A payment must be positive."
        return End()


class AwaitShipping(Procedure[Ledger]):
    prompt = make_prompt("Wait for the parcel to ship")

    @handler
    def handle_shipped(self, state: Ledger, event: Shipped):
        state.seen.append(f"shipped {event.payload}")
        return End()

    @handler
    def handle_paid(self, state: Ledger, event: Paid):
        state.seen.append("paid first")
        return self
