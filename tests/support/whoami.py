"""A procedure that asks the runtime which SOP it is handling (sopy_actors.current_sop)."""

from __future__ import annotations

from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, current_sop, handler, make_prompt


class Seen(BaseModel):
    sop_id: str | None = None
    host: str | None = None


class Asked(Event[str]):
    pass


class Asking(Procedure[Seen]):
    prompt = make_prompt("Say who you are.")

    @handler
    def on_asked(self, state: Seen, event: Asked) -> Procedure[Seen]:
        me = current_sop()
        assert me is not None, "a handler on the runtime always has a current SOP"
        state.sop_id, state.host = me.sop_id, me.host
        return End()


def make_sop() -> SOP[Seen]:
    return SOP(state=Seen(), init_proc=Asking())
