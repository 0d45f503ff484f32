"""Workflows with known metric counts (their class names appear only in monitoring tests)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt
from sopy_actors.monitoring import HealthCheck


class Tally(BaseModel):
    items: list[int] = Field(default_factory=list)


class ItemCounted(Event[int]):
    pass


class CountClosed(Event[str]):
    pass


class MeteredCollecting(Procedure[Tally]):
    prompt = make_prompt("Collect non-negative items, then close.")

    @handler
    def on_item(self, state: Tally, event: ItemCounted) -> Procedure[Tally] | str:
        if event.payload < 0:
            return "Send a non-negative item."
        state.items.append(event.payload)
        return self

    @handler
    def on_close(self, state: Tally, event: CountClosed) -> Procedure[Tally]:
        return MeteredChecking()


class MeteredChecking(Procedure[Tally]):
    prompt = make_prompt("Confirm the tally.")

    @handler
    def on_close(self, state: Tally, event: CountClosed) -> Procedure[Tally]:
        return End()


def metered_sop() -> SOP[Tally]:
    return SOP(state=Tally(), init_proc=MeteredCollecting())


METERED_EVENTS = [
    ItemCounted(payload=1),
    ItemCounted(payload=-1),
    ItemCounted(payload=2),
    CountClosed(payload="a"),
    CountClosed(payload="b"),
]
"""Per SOP: stayed 2, rejected 1, transitioned 1, ended 1."""


def run_metered(count: int) -> list[Any]:
    """Start `count` metered SOPs and drive each to End; returns their handles."""
    handles = [metered_sop().start() for _ in range(count)]
    for event_template in METERED_EVENTS:
        futures = [h.submit(event_template.model_copy(update={"id": f"{h.sop_id}-{event_template.id}"})) for h in handles]
        for future in futures:
            future.result(timeout=120)
    return handles


class Watch(BaseModel):
    checks: int = 0
    dependencies: dict[str, bool] = Field(default_factory=dict)
    memory_usage: float = 0.0


class WatchStopped(Event[str]):
    pass


class Watching(Procedure[Watch]):
    prompt = make_prompt("Watch health until stopped.")

    @handler
    def on_health(self, state: Watch, event: HealthCheck) -> Procedure[Watch]:
        state.checks += 1
        state.memory_usage = event.payload["memory_usage"]
        state.dependencies = {name: status["up"] for name, status in event.payload["dependencies"].items()}
        return self

    @handler
    def on_stop(self, state: Watch, event: WatchStopped) -> Procedure[Watch]:
        return End()


def watch_sop() -> SOP[Watch]:
    return SOP(state=Watch(), init_proc=Watching())
