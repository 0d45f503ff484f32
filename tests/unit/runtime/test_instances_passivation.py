"""Which instances a host drops from memory, without Ray."""

from __future__ import annotations

import time

from sopy_actors.runtime.instances import Instance, Instances, Passivation
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
    assert [i.record.sop_id for i in instances.all()] == ["s0", "s1", "s5"]
    assert instances.counts()["passivated"] == 3


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
