"""Sender ordering without Ray: gaps, duplicates, skipped gaps, restart from a checkpoint."""

from __future__ import annotations

from sopy_actors.runtime.ordering import MAX_SENDERS, SenderOrder, advance_senders
from sopy_actors.runtime.sending import Sequencer


def test_items_in_order_are_released_at_once() -> None:
    order: SenderOrder[str] = SenderOrder()
    assert order.admit("a", 0, "a0") == ["a0"]
    assert order.admit("a", 1, "a1") == ["a1"]


def test_an_early_item_is_held_until_its_gap_closes_then_released_in_order() -> None:
    order: SenderOrder[str] = SenderOrder()
    assert order.admit("a", 2, "a2") == []
    assert order.admit("a", 1, "a1") == []
    assert order.held() == 2 and order.is_held("a", 2)
    assert order.admit("a", 0, "a0") == ["a0", "a1", "a2"]
    assert order.held() == 0 and not order.is_held("a", 2)


def test_senders_are_ordered_independently() -> None:
    order: SenderOrder[str] = SenderOrder()
    assert order.admit("a", 1, "a1") == []
    assert order.admit("b", 0, "b0") == ["b0"]
    assert order.admit("a", 0, "a0") == ["a0", "a1"]


def test_a_redelivered_or_unnumbered_item_is_released_for_deduplication() -> None:
    order: SenderOrder[str] = SenderOrder()
    order.admit("a", 0, "a0")
    assert order.admit("a", 0, "a0 again") == ["a0 again"]
    assert order.admit(None, None, "anonymous") == ["anonymous"]
    assert order.admit("a", 1, "a1") == ["a1"]


def test_skipping_a_gap_releases_from_the_lowest_held_item() -> None:
    order: SenderOrder[str] = SenderOrder()
    order.admit("a", 3, "a3")
    order.admit("a", 2, "a2")
    assert order.skip_gap("a", 3) == ["a2", "a3"]
    assert order.admit("a", 4, "a4") == ["a4"]
    assert order.skip_gap("a", 3) == []  # nothing held any more


def test_a_restarted_order_continues_from_the_checkpointed_numbers() -> None:
    senders = advance_senders({}, "a", 0)
    senders = advance_senders(senders, "a", 1)
    assert senders == {"a": 2}
    restarted: SenderOrder[str] = SenderOrder(senders)
    assert restarted.admit("a", 3, "a3") == []
    assert restarted.admit("a", 2, "a2") == ["a2", "a3"]


def test_the_checkpoint_keeps_the_newest_senders_and_never_goes_back() -> None:
    senders: dict[str, int] = {}
    for number in range(MAX_SENDERS + 5):
        senders = advance_senders(senders, f"s{number}", 0)
    assert len(senders) == MAX_SENDERS and "s0" not in senders and f"s{MAX_SENDERS + 4}" in senders
    assert advance_senders({"a": 5}, "a", 1) == {"a": 5}
    assert advance_senders({"a": 5}, None, None) == {"a": 5}


def test_a_floor_stops_the_wait_for_numbers_that_will_never_arrive() -> None:
    order: SenderOrder[str] = SenderOrder()
    assert order.admit("a", 0, "a0") == ["a0"]
    assert order.admit("a", 2, "a2") == []  # waits for 1 ...
    assert order.admit("a", 3, "a3", floor=2) == ["a2", "a3"]  # ... until the sender says 1 is settled
    assert order.admit("a", 5, "a5", floor=5) == ["a5"]  # 4 failed to send: nothing waits
    assert order.admit("a", 6, "a6", floor=4) == ["a6"]  # a lower floor changes nothing


def test_the_sequencer_floor_is_the_lowest_unsettled_number() -> None:
    sequencer = Sequencer("me")
    first, second = sequencer.item("s", {}), sequencer.item("s", {})
    assert (first.seq, first.floor, second.seq, second.floor) == (0, 0, 1, 0)
    sequencer.settle([second])  # e.g. its send failed
    third = sequencer.item("s", {})
    assert (third.seq, third.floor) == (2, 0)  # 0 may still be on its way
    sequencer.settle([first])
    assert sequencer.item("s", {}).floor == 2
    assert sequencer.item("other", {}).seq == 0


def test_an_item_in_turn_is_taken_without_holding_it_and_any_other_is_left_to_admit() -> None:
    order: SenderOrder[str] = SenderOrder({"a": 1})
    assert order.take(None, None) and order.take("a", 0)  # unnumbered; a redelivery
    assert not order.take("a", 2)  # early: it would be held
    assert not order.take("a", 1, floor=3)  # the floor would release held items first
    assert order.held() == 0
    order.admit("a", 2, "a2")
    assert not order.take("a", 1)  # it would release a2 with it
    assert order.admit("a", 1, "a1") == ["a1", "a2"]
    assert order.take("a", 3)
    assert order.admit("a", 4, "a4") == ["a4"]  # 3 was taken: 4 is next


def test_the_numbers_ahead_of_a_checkpoint_are_those_of_the_senders_it_would_keep() -> None:
    order: SenderOrder[str] = SenderOrder()
    for number in range(MAX_SENDERS + 10):
        assert order.take(f"p{number}", 0)
    assert order.take("p3", 1)  # p3's event 1 committed nothing: the checkpoint still says 1
    checkpoint = {f"p{number}": 1 for number in range(MAX_SENDERS + 10)}
    assert order.ahead_of(checkpoint) == {"p3": 2}
    ahead = order.ahead_of({})
    assert len(ahead) == MAX_SENDERS and "p0" not in ahead and f"p{MAX_SENDERS + 9}" in ahead

    reloaded: SenderOrder[str] = SenderOrder(checkpoint)
    reloaded.catch_up({"p3": 2, "p4": 0})
    assert reloaded.admit("p3", 2, "next") == ["next"]  # in turn, not held behind event 1
    assert reloaded.is_held("p4", 2) is False and reloaded.admit("p4", 2, "early") == []  # p4 still expects 1
