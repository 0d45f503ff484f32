"""The hybrid logical clock: monotonic per node, after what it observed, ties broken by node."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sopy_actors.errors import InputError
from sopy_actors.state.hlc import HybridClock, Stamp


class FakeWall:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


def test_stamps_of_one_clock_increase_even_when_the_wall_clock_stands_still_or_goes_back() -> None:
    wall = FakeWall(100.0)
    clock = HybridClock("a", wall)
    first, second = clock.now(), clock.now()
    wall.seconds = 99.0  # NTP stepped the clock back
    third = clock.now()
    assert first < second < third
    assert (first.physical, first.logical) == (100_000, 0)
    assert (third.physical, third.logical) == (100_000, 2)
    wall.seconds = 101.0
    assert clock.now() == Stamp(101_000, 0, "a")


def test_a_stamp_made_after_observing_one_is_later_even_from_a_clock_behind_it() -> None:
    ahead = HybridClock("a", FakeWall(500.0))
    behind = HybridClock("b", FakeWall(10.0))
    received = ahead.now()
    behind.observe(str(received))
    assert behind.now() > received


def test_equal_times_are_ordered_by_node_id() -> None:
    assert Stamp(5, 1, "a") < Stamp(5, 1, "b") < Stamp(5, 2, "a") < Stamp(6, 0, "a")


def test_a_clock_resumes_after_its_checkpointed_stamp() -> None:
    clock = HybridClock.resume("a", "000000000001000.000004.a", wall=FakeWall(0.5))
    assert clock.now() == Stamp(1000, 5, "a")


@given(st.integers(0, 10**13), st.integers(0, 10**5), st.text(min_size=1, max_size=12))
def test_the_text_form_round_trips(physical: int, logical: int, node: str) -> None:
    stamp = Stamp(physical, logical, node)
    assert Stamp.parse(str(stamp)) == stamp


@given(st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 10**5), st.sampled_from(["a", "b", "node-7"])), min_size=2))
def test_the_text_form_sorts_as_the_stamps_do(parts: list[tuple[int, int, str]]) -> None:
    stamps = [Stamp(*p) for p in parts]
    assert sorted(stamps) == [Stamp.parse(t) for t in sorted(str(s) for s in stamps)]


def test_a_malformed_stamp_is_an_input_error() -> None:
    with pytest.raises(InputError, match="Invalid HLC stamp"):
        Stamp.parse("yesterday")
