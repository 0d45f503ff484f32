"""An SOP whose handler takes as long as the event asks: cancels and timeouts mid-handler."""

from __future__ import annotations

import time

from pydantic import BaseModel

from sopy_actors import SOP, Event, Procedure, handler, make_prompt


class Work(BaseModel):
    done: int = 0


class WorkRequested(Event[float]):
    """Work for `payload` seconds."""


class Working(Procedure[Work]):
    prompt = make_prompt("Do the work asked for.")

    @handler
    def on_work(self, state: Work, event: WorkRequested) -> Procedure[Work]:
        time.sleep(event.payload)
        state.done += 1
        return self


def make_sop() -> SOP[Work]:
    return SOP(state=Work(), init_proc=Working())
