"""The committed-ids filter: never forgets an id, rarely claims one it never saw, stays small."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from sopy_actors.runtime.seen import SeenIds


@given(st.lists(st.text(min_size=1, max_size=40), max_size=300))
def test_every_added_id_is_recognised(ids: list[str]) -> None:
    seen = SeenIds(ids)
    assert all(seen.may_contain(event_id) for event_id in ids)
    assert len(seen) == len(ids)


def test_new_ids_are_rarely_taken_for_seen_ones_and_memory_grows_with_the_events() -> None:
    seen = SeenIds(uuid.uuid4().hex for _ in range(10_000))
    false_positives = sum(seen.may_contain(uuid.uuid4().hex) for _ in range(10_000))
    assert false_positives < 300  # ~1% designed; 3% bound keeps the test stable
    assert seen.nbytes() < 10_000 * 8  # a few bytes per id, not the ids themselves
    assert SeenIds().nbytes() < 64  # an idle SOP's filter is tiny
