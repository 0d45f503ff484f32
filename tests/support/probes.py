"""Dependency probe functions that misbehave, and a workflow whose instances gauge shows the
Monitor's sampler is alive (its class names appear only in probe tests).

The functions are referenced as `tests.support.probes:<name>`: the session cluster ships
`tests/` to its workers, so probe runners import them by name.
"""

from __future__ import annotations

import os
import threading

from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt


def always_up() -> bool:
    """A dependency that is always up."""
    return True


def reports_down() -> bool:
    """A dependency that answers, and is down."""
    return False


def raises() -> None:
    """A dependency whose client raises."""
    raise ConnectionRefusedError("dependency refused the connection")


def hangs_forever() -> None:
    """A dependency client that never returns (no timeout of its own)."""
    threading.Event().wait()


def exits_process() -> None:
    """A probe that takes its whole process down, as a crashing C extension would."""
    os._exit(1)


class Sampled(BaseModel):
    stopped: bool = False


class SamplingStopped(Event[str]):
    pass


class ProbeSampled(Procedure[Sampled]):
    prompt = make_prompt("Wait until stopped.")

    @handler
    def on_stop(self, state: Sampled, event: SamplingStopped) -> Procedure[Sampled]:
        state.stopped = True
        return End()


def sampled_sop() -> SOP[Sampled]:
    return SOP(state=Sampled(), init_proc=ProbeSampled())
