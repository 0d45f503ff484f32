"""DistributedState keeps the spec's semantics, and replicas merging last-writer-wins on HLC
stamps converge whatever the order of delivery."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sopy_actors.core.codec import decode_state, encode_state
from sopy_actors.state.distributed import (
    DistributedState,
    SharedChange,
    SharedEntry,
    lww_merge,
    merge_state_data,
    pending_entries,
    space_of,
)
from sopy_actors.state.hlc import Stamp


class FakeWall:
    def __init__(self, seconds: float = 1000.0) -> None:
        self.seconds = seconds

    def __call__(self) -> float:
        return self.seconds


class Replica(DistributedState):
    sop_wall_clock = FakeWall()


def _wall() -> FakeWall:
    wall = Replica.sop_wall_clock
    assert isinstance(wall, FakeWall)
    return wall


def entry(key: str, value: Any, physical: int, node: str, logical: int = 0) -> SharedEntry:
    return SharedEntry(key=key, value=value, stamp=str(Stamp(physical, logical, node)), source_node=node)


# -- the spec's semantics -------------------------------------------------------------------


def test_a_local_write_takes_precedence_and_is_pending_until_confirmed() -> None:
    state = Replica(node_id="east", sop_space="inventory")
    state.update_shared("widgets", 10, "warehouse")
    state.update_local("widgets", 7)
    assert state.get_effective_value("widgets") == 7
    assert state.needs_sync() == ["widgets"]
    assert state.get_effective_value("gadgets") is None
    state.merge(state.pending_entries())  # the service's confirmation echoes the write
    assert state.needs_sync() == [] and state.sync_status == {"widgets": "synced"}
    assert state.get_effective_value("widgets") == 7


def test_a_shared_value_carries_its_source_node_and_time() -> None:
    _wall().seconds = 1_700_000_000.25
    state = Replica(node_id="east")
    state.update_shared("price", 12, "west")
    shared = state.shared_data["price"]
    assert shared["value"] == 12 and shared["source_node"] == "west"
    assert shared["timestamp"].startswith("2023-11-14T22:13:20.250")
    assert state.sync_status["price"] == "synced"


def test_a_later_write_from_elsewhere_replaces_the_local_value() -> None:
    _wall().seconds = 100.0
    state = Replica(node_id="east", sop_space="s")
    state.update_local("k", "mine")
    state.merge(SharedChange(space="s", entries=[entry("k", "theirs", 200_000, "west")]))
    assert state.get_effective_value("k") == "theirs"
    assert "k" not in state.local_data and state.needs_sync() == []
    assert state.shared_data["k"]["source_node"] == "west"
    state.update_local("k", "mine again")  # the clock moved past what it merged
    assert Stamp.parse(state.sop_stamps["k"]) > Stamp(200_000, 0, "west")


def test_an_earlier_write_from_elsewhere_changes_nothing_and_the_local_write_stays_pending() -> None:
    _wall().seconds = 100.0
    state = Replica(node_id="east", sop_space="s")
    state.update_local("k", "mine")
    before = state.model_copy(deep=True)
    state.merge([entry("k", "old", 50_000, "west")])
    assert state.local_data == before.local_data and state.needs_sync() == ["k"]
    assert state.shared_data == {}


def test_equal_times_are_won_by_the_larger_node_id() -> None:
    state = Replica(node_id="c")
    state.merge([entry("k", "from a", 5, "a"), entry("k", "from b", 5, "b")])
    assert state.get_effective_value("k") == "from b"
    state.merge([entry("k", "from a", 5, "a")])
    assert state.get_effective_value("k") == "from b"


def test_update_shared_with_the_writers_stamp_merges_last_writer_wins() -> None:
    state = Replica(node_id="c")
    state.update_shared("k", "new", "b", stamp=str(Stamp(9, 0, "b")))
    state.update_shared("k", "old", "a", stamp=str(Stamp(8, 0, "a")))
    assert state.get_effective_value("k") == "new"


def test_the_json_form_names_the_space_and_round_trips() -> None:
    state = Replica(node_id="east", sop_space="inventory")
    state.update_local("k", {"nested": [1, 2]})
    wire = encode_state(state)
    assert space_of(wire["data"]) == "inventory"
    assert space_of(encode_state(Replica(node_id="x"))["data"]) is None
    assert space_of({"local_data": {}}) is None
    assert decode_state(wire) == state
    assert pending_entries(wire["data"]) == state.pending_entries()


def test_merging_json_data_leaves_the_input_unchanged_and_matches_the_model() -> None:
    state = Replica(node_id="east", sop_space="s")
    state.update_local("k", 1)
    data = encode_state(state)["data"]
    frozen = copy.deepcopy(data)
    incoming = [entry("k", 2, 10**15, "west"), entry("j", 3, 1, "west")]
    merged = merge_state_data(data, incoming)
    assert data == frozen
    state.merge(incoming)
    assert Replica.model_validate(merged) == state


# -- convergence ----------------------------------------------------------------------------

entries = st.builds(
    entry,
    key=st.sampled_from(["a", "b", "c"]),
    value=st.integers(0, 3),
    physical=st.integers(0, 5),
    node=st.sampled_from(["n0", "n1", "n2"]),
    logical=st.integers(0, 2),
)


@given(st.lists(entries, max_size=20), st.randoms(use_true_random=False))
def test_lww_merge_gives_the_same_map_for_any_order_grouping_and_repetition(
    writes: list[SharedEntry], random: Any
) -> None:
    shuffled = writes + writes[: len(writes) // 2]
    random.shuffle(shuffled)
    cut = random.randint(0, len(shuffled))
    in_two = lww_merge(lww_merge({}, shuffled[:cut]), shuffled[cut:])
    assert lww_merge({}, writes) == in_two == lww_merge(lww_merge({}, writes), writes)


Op = tuple[str, int, int, str, int, float]
operations = st.lists(
    st.tuples(
        st.sampled_from(["write", "service", "deliver"]),
        st.integers(0, 2),  # replica
        st.integers(0, 30),  # message index (mod the queue's length)
        st.sampled_from(["a", "b"]),  # key
        st.integers(0, 9),  # value
        st.floats(0, 3),  # the writer's wall clock, any skew, may go back
    ),
    max_size=40,
)


class Simulation:
    """Replicas, the shared-state service and the host hook, with messages delivered in any order."""

    def __init__(self) -> None:
        self.replicas = [Replica(node_id=f"n{i}", sop_space="s") for i in range(3)]
        self.service: dict[str, SharedEntry] = {}
        self.to_service: list[tuple[int, list[SharedEntry]]] = []
        self.inboxes: list[list[list[SharedEntry]]] = [[] for _ in self.replicas]
        self.sent: list[dict[str, str]] = [{} for _ in self.replicas]

    def committed(self, index: int) -> None:
        # SharedSync.committed: pending writes not sent yet go to the service.
        fresh = [e for e in self.replicas[index].pending_entries() if self.sent[index].get(e.key) != e.stamp]
        self.sent[index].update({e.key: e.stamp for e in fresh})
        if fresh:
            self.to_service.append((index, fresh))

    def write(self, index: int, key: str, value: int, wall: float) -> None:
        _wall().seconds = wall
        self.replicas[index].update_local(key, value)
        self.committed(index)

    def serve(self, position: int) -> None:
        # SharedStateActor.sync: merge, then the writer gets its keys settled, others the changes.
        writer, writes = self.to_service.pop(position % len(self.to_service))
        merged = lww_merge(self.service, writes)
        changed = [e for k, e in merged.items() if self.service.get(k) != e]
        self.service = merged
        for index in range(len(self.replicas)):
            send = [merged[w.key] for w in writes] if index == writer else changed
            if send:
                self.inboxes[index].append(send)

    def deliver(self, index: int, position: int) -> None:
        inbox = self.inboxes[index]
        self.replicas[index].merge(inbox.pop(position % len(inbox)))
        self.committed(index)

    def drain(self) -> None:
        while self.to_service or any(self.inboxes):
            if self.to_service:
                self.serve(0)
            for index, inbox in enumerate(self.inboxes):
                if inbox:
                    self.deliver(index, 0)


@given(operations)
def test_replicas_converge_whatever_the_interleaving_and_order_of_delivery(ops: list[Op]) -> None:
    simulation = Simulation()
    for kind, replica, position, key, value, wall in ops:
        if kind == "write":
            simulation.write(replica, key, value, wall)
        elif kind == "service" and simulation.to_service:
            simulation.serve(position)
        elif kind == "deliver" and simulation.inboxes[replica]:
            simulation.deliver(replica, position)
    simulation.drain()
    expected = {key: e.value for key, e in simulation.service.items()}
    for state in simulation.replicas:
        assert state.effective_data() == expected
        assert state.needs_sync() == []


@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["a", "b"]), st.integers(0, 9), st.floats(0, 3)), max_size=15))
def test_the_last_write_in_clock_order_is_the_converged_value(writes: list[tuple[int, str, int, float]]) -> None:
    simulation = Simulation()
    stamped: dict[str, tuple[Stamp, int]] = {}
    for replica, key, value, wall in writes:
        simulation.write(replica, key, value, wall)
        stamp = Stamp.parse(simulation.replicas[replica].sop_stamps[key])
        if key not in stamped or stamp > stamped[key][0]:
            stamped[key] = (stamp, value)
    simulation.drain()
    assert simulation.replicas[0].effective_data() == {key: value for key, (_, value) in stamped.items()}
