"""Distributed inventory: stores (SOPs on any node) reserve stock from counts they share.

Each SOP's state is a `DistributedState` in one shared space. The warehouse writes the stock of
each SKU; every store writes only its own reservation count per SKU (`reserved:SKU:NODE`), so
those keys never conflict and a store's available count, stock minus every store's
reservations, is the same everywhere once the writes have spread. Prices are written by any
store: that key does conflict, and the last writer (by hybrid logical clock) wins everywhere.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt
from sopy_actors.state import DistributedState


class InventoryState(DistributedState):
    """A store's (or the warehouse's) view of the shared inventory."""

    reservations: list[str] = Field(default_factory=list)

    def stock(self, sku: str) -> int:
        """Units of `sku` delivered to the warehouse so far."""
        return int(self.get_effective_value(f"stock:{sku}") or 0)

    def reserved(self, sku: str) -> int:
        """Units of `sku` every store has reserved (as far as this state has heard)."""
        prefix = f"reserved:{sku}:"
        return sum(int(value) for key, value in self.effective_data().items() if key.startswith(prefix))

    def available(self, sku: str) -> int:
        """Units of `sku` left to reserve."""
        return self.stock(sku) - self.reserved(sku)


class Delivery(BaseModel):
    sku: str
    quantity: int = Field(gt=0)


class Order(BaseModel):
    order: str
    sku: str
    quantity: int = Field(gt=0)


class Price(BaseModel):
    sku: str
    price: float = Field(gt=0)


class StockDelivered(Event[Delivery]):
    """Units of a SKU arrived at the warehouse."""


class ReservationRequested(Event[Order]):
    """A customer order wants units of a SKU."""


class PriceSet(Event[Price]):
    """A store sets the price of a SKU (for every store)."""


class ShiftEnded(Event[str]):
    """The store closes."""


class Trading(Procedure[InventoryState]):
    prompt = make_prompt(
        """
        Record deliveries, reserve stock for orders from the shared counts and set prices.
        Never reserve more than is available.
        """
    )

    @handler
    def on_delivery(self, state: InventoryState, event: StockDelivered) -> Procedure[InventoryState]:
        delivery = event.payload
        state.update_local(f"stock:{delivery.sku}", state.stock(delivery.sku) + delivery.quantity)
        return self

    @handler
    def on_order(self, state: InventoryState, event: ReservationRequested) -> Procedure[InventoryState] | str:
        order = event.payload
        left = state.available(order.sku)
        if order.quantity > left:
            return f"Only {left} {order.sku} left: order {order.order} for {order.quantity} cannot be reserved."
        mine = f"reserved:{order.sku}:{state.node_id}"
        state.update_local(mine, int(state.get_effective_value(mine) or 0) + order.quantity)
        state.reservations.append(order.order)
        return self

    @handler
    def on_price(self, state: InventoryState, event: PriceSet) -> Procedure[InventoryState]:
        state.update_local(f"price:{event.payload.sku}", event.payload.price)
        return self

    @handler
    def on_shift_end(self, state: InventoryState, event: ShiftEnded) -> End:
        return End()


def inventory_sop(node: str = "warehouse", space: str = "inventory") -> SOP[InventoryState]:
    """One participant of the shared inventory: `node` must be unique within `space`."""
    return SOP(InventoryState(node_id=node, sop_space=space), Trading(), retry_limits=10)
