"""Run the distributed inventory example: `sopy-actors run examples/distributed_inventory/main.py`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from workflow import (
    Delivery,
    InventoryState,
    Order,
    Price,
    PriceSet,
    ReservationRequested,
    ShiftEnded,
    StockDelivered,
    Trading,
    inventory_sop,
)

from sopy_actors.core.graph import ProcedureGraph
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.shared_state import join_shared_space

NODES = ("warehouse", "store-east", "store-west")


def converged(handles: dict[str, SOPHandle], *, timeout: float = 120.0) -> dict[str, InventoryState]:
    """Wait until every participant holds the same values and nothing is pending; their states."""
    deadline = time.monotonic() + timeout
    while True:
        states: dict[str, InventoryState] = {name: handle.state() for name, handle in handles.items()}
        views = [json.dumps(state.effective_data(), sort_keys=True) for state in states.values()]
        if len(set(views)) == 1 and not any(state.needs_sync() for state in states.values()):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"the participants did not converge in {timeout} s: {views}")
        time.sleep(0.1)


def show(title: str, states: dict[str, InventoryState]) -> None:
    print(f"--- {title}")
    for name, state in states.items():
        print(
            f"{name:<11} widgets {state.available('widgets'):>2} of {state.stock('widgets'):>2} available, "
            f"gadgets {state.available('gadgets'):>2} of {state.stock('gadgets'):>2}, "
            f"price {state.get_effective_value('price:widgets')}"
        )


def main() -> dict[str, Any]:
    """Stock a shared space, reserve from two stores at once, set a price from both, converge."""
    print(f"--- graph\n{ProcedureGraph.build(Trading()).to_mermaid()}")
    space = f"inventory-{uuid.uuid4().hex[:8]}"  # each run its own space
    handles = {node: inventory_sop(node, space).start() for node in NODES}
    for name, handle in handles.items():
        join_shared_space(handle)  # listen from now on, before its first event
        print(f"{name} runs on {handle.status().host}")
    warehouse, east, west = (handles[node] for node in NODES)

    warehouse.send(StockDelivered(payload=Delivery(sku="widgets", quantity=10)))
    warehouse.send(StockDelivered(payload=Delivery(sku="gadgets", quantity=4)))
    show("after the deliveries", converged(handles))

    # Two stores reserve at the same moment; each writes only its own reservation key.
    futures = [
        east.submit(ReservationRequested(payload=Order(order="E-1", sku="widgets", quantity=3))),
        west.submit(ReservationRequested(payload=Order(order="W-1", sku="widgets", quantity=4))),
        west.submit(ReservationRequested(payload=Order(order="W-2", sku="gadgets", quantity=1))),
    ]
    for future in futures:
        print(f"reservation: {future.result(timeout=120).outcome.value}")
    show("after the reservations", converged(handles))

    # Both stores set the price of widgets at once: one key, two writers; the later write wins.
    for future in [
        east.submit(PriceSet(payload=Price(sku="widgets", price=9.5))),
        west.submit(PriceSet(payload=Price(sku="widgets", price=9.9))),
    ]:
        future.result(timeout=120)
    states = converged(handles)
    show("after both stores set the price", states)
    winner = states["warehouse"].shared_data["price:widgets"]
    print(f"price conflict: {winner['value']} from {winner['source_node']} won (HLC {winner['hlc']})")

    refused = east.send(ReservationRequested(payload=Order(order="E-2", sku="widgets", quantity=5)))
    print(f"E-2 for 5 widgets: {refused.outcome.value}: {refused.prompt}")

    finals = {}
    for name, handle in handles.items():
        handle.send(ShiftEnded(payload="closing"))
        final: InventoryState = handle.result(timeout=120)
        finals[name] = {"values": final.effective_data(), "reservations": final.reservations}
    print("--- converged views")
    print(json.dumps(finals, indent=2, sort_keys=True))
    return finals


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
