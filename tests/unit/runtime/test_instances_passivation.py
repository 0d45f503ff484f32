"""Which instances a host drops from memory, without Ray."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sopy_actors.runtime.instances import Instance, Instances, Passivation
from sopy_actors.runtime.records import StoredSOP
from tests.support.records import record


def _instances(count: int, *, max_live: int, idle_after: float = 300.0) -> tuple[Instances, list[Instance]]:
    instances = Instances("sopy-host-0", store=None)
    instances.settings = Passivation(max_live=max_live, idle_after=idle_after)
    made = [Instance.of(record(f"s{i}")) for i in range(count)]
    for instance in made:
        instances.add(instance)
    for age, instance in enumerate(reversed(made)):  # s0 least recently used
        instance.used = time.monotonic() - 10 - age
    return instances, made


def test_the_least_recently_used_idle_instances_beyond_max_live_leave_first() -> None:
    instances, made = _instances(6, max_live=3)
    made[0].busy = True  # in flight: stays
    made[1].record = made[1].record.model_copy(update={"phase": "waiting_for_human"})  # stays
    assert instances.passivate() == 3
    # The two not idle count as used now: they follow s5 in the least-recently-used order.
    assert [i.record.sop_id for i in instances.all()] == ["s5", "s0", "s1"]
    assert instances.counts()["passivated"] == 3


def test_a_pass_walks_only_the_instances_it_drops_not_every_live_one(monkeypatch: pytest.MonkeyPatch) -> None:
    instances, _ = _instances(1_000, max_live=997, idle_after=10_000)
    asked: list[str] = []
    idle = Instance.idle
    monkeypatch.setattr(Instance, "idle", lambda self: asked.append(self.record.sop_id) or idle(self))
    assert instances.passivate() == 3
    assert asked == ["s0", "s1", "s2"]
    asked.clear()
    assert instances.passivate() == 0 and asked == []  # nothing over the bound, nothing idle long


def test_an_instance_used_again_leaves_after_the_ones_used_before_it() -> None:
    instances, made = _instances(4, max_live=3)

    async def use_the_oldest() -> Instance:
        return await instances.get("s0")

    assert asyncio.run(use_the_oldest()) is made[0]
    made[0].used -= 5  # used after s3, but not just now: only the bound keeps it
    assert instances.passivate() == 1
    assert [i.record.sop_id for i in instances.all()] == ["s2", "s3", "s0"]


def test_idle_time_drops_instances_and_a_just_used_one_stays() -> None:
    instances, made = _instances(3, max_live=100, idle_after=5)
    made[2].used = time.monotonic()  # just handed out by get()
    assert instances.passivate() == 2
    assert [i.record.sop_id for i in instances.all()] == ["s2"]


def test_adding_past_max_live_passivates_at_once() -> None:
    instances = Instances("sopy-host-0", store=None)
    instances.settings = Passivation(max_live=2)
    for i in range(2):
        instances.add(Instance.of(record(f"old{i}")))
        instances.find(f"old{i}").used -= 60  # type: ignore[union-attr]
    instances.add(Instance.of(record("new")))
    assert [i.record.sop_id for i in instances.all()] == ["old1", "new"]


def test_sops_of_one_job_share_one_runtime_env_object_however_their_records_arrived() -> None:
    instances = Instances("sopy-host-0", store=None)
    for name, uri in (("a", "gcs://one.zip"), ("b", "gcs://one.zip"), ("c", "gcs://two.zip")):
        instances.add(Instance.of(record(name, runtime_env={"working_dir": uri, "config": {"x": 1}})))  # a copy each
    a, b, c = (instances.find(name).record for name in "abc")  # type: ignore[union-attr]
    assert a.runtime_env is b.runtime_env and a.runtime_env == {"working_dir": "gcs://one.zip", "config": {"x": 1}}
    assert c.runtime_env is not a.runtime_env and c.runtime_env == {"working_dir": "gcs://two.zip", "config": {"x": 1}}


class _Remote:
    """An actor method's stand-in: `.remote(...)` returns an awaitable, as Ray's does."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.function(*args)


class _Store:
    def __init__(self, *, broken: set[str], batch_fails: bool) -> None:
        async def load(sop_id: str, recent: int = 256) -> StoredSOP | None:
            if sop_id in broken:
                raise ValueError(f"cannot read {sop_id}")
            return StoredSOP(record=record(sop_id), recent=[])

        async def load_many(sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]:
            if batch_fails:
                raise RuntimeError("one record of the batch cannot be read")
            return [await load(sop_id) for sop_id in sop_ids]

        self.load, self.load_many = _Remote(load), _Remote(load_many)


def test_sops_missing_at_one_moment_load_with_one_store_call() -> None:
    store = _Store(broken=set(), batch_fails=False)
    instances = Instances("sopy-host-0", store=store)

    async def run() -> list[Instance]:
        return list(await asyncio.gather(instances.get("a"), instances.get("b"), instances.get("a")))

    a, b, again = asyncio.run(run())
    assert (a.record.sop_id, b.record.sop_id) == ("a", "b") and again is a
    assert store.load_many.calls == [(["a", "b"],)] and store.load.calls == []


def test_one_sop_the_store_cannot_read_fails_alone_in_a_batched_load() -> None:
    store = _Store(broken={"bad"}, batch_fails=True)
    instances = Instances("sopy-host-0", store=store)

    async def run() -> list[Any]:
        return list(await asyncio.gather(instances.get("good"), instances.get("bad"), return_exceptions=True))

    good, bad = asyncio.run(run())
    assert isinstance(good, Instance) and good.record.sop_id == "good"
    assert isinstance(bad, ValueError) and "cannot read bad" in str(bad)


def test_an_sop_added_again_is_counted_once_and_becomes_the_most_recently_used() -> None:
    instances, made = _instances(3, max_live=100)
    again = Instance.of(record("s0"))
    instances.add(again)
    assert instances.find("s0") is again
    assert [i.record.sop_id for i in instances.all()] == ["s1", "s2", "s0"]
    made[0].busy = True  # the replaced instance no longer counts
    assert instances.counts()["sops"] == {"Docflow": {"waiting": 3}} and instances.counts()["busy"] == 0


def test_an_sop_started_while_it_loads_keeps_its_live_instance() -> None:
    release = asyncio.Event()

    class _SlowStore:
        async def _load_many(self, sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]:
            await release.wait()
            return [StoredSOP(record=record(sop_id), recent=[]) for sop_id in sop_ids]

        def __init__(self) -> None:
            self.load_many = _Remote(self._load_many)

    instances = Instances("sopy-host-0", store=_SlowStore())
    started = Instance.of(record("s1"))

    async def run() -> Instance:
        loading = asyncio.ensure_future(instances.get("s1"))
        await asyncio.sleep(0.01)
        instances.add(started)  # `start` on this host, while the load waits
        started.busy = True
        release.set()
        return await loading

    assert asyncio.run(run()) is started
    assert instances.find("s1") is started and instances.counts()["busy"] == 1
    assert instances.counts()["sops"] == {"Docflow": {"running": 1}}
