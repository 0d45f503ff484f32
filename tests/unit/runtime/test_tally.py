"""A host's instance counts, kept as instances change, against a count made one by one (no Ray)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sopy_actors.runtime.instances import Instance, Instances, Passivation, Queued
from sopy_actors.runtime.messages import SendItem
from tests.support.records import record

_PHASES = ("running", "waiting_for_human", "done", "failed", "cancelled")


def _counted_one_by_one(instances: Instances) -> dict[str, Any]:
    phases: Counter[tuple[str, str]] = Counter((i.record.name, i.phase()) for i in instances.all())
    queued: Counter[str] = Counter()
    for instance in instances.all():
        queued[instance.record.name] += len(instance.queue)
    sops: dict[str, dict[str, int]] = {}
    for (name, phase), count in phases.items():
        sops.setdefault(name, {})[phase] = count
    return {
        "sops": sops,
        "queued_by_sop": {name: count for name, count in queued.items() if count},
        "busy": sum(i.busy for i in instances.all()),
        "queued": sum(queued.values()),
        "instances": len(instances.all()),
    }


def _queued(loop: asyncio.AbstractEventLoop, sop_id: str) -> Queued:
    return Queued(SendItem(sop_id, {}), loop.create_future())


_STEPS = st.lists(
    st.tuples(st.sampled_from(["add", "busy", "idle", "phase", "enqueue", "dequeue", "passivate"]), st.integers(0, 7),
              st.sampled_from(_PHASES)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_STEPS)
def test_counts_kept_as_instances_change_equal_counting_them_one_by_one(steps: list[tuple[str, int, str]]) -> None:
    instances = Instances("sopy-host-0", store=None)
    instances.settings = Passivation(max_live=4)
    made: dict[int, Instance] = {}
    loop = asyncio.new_event_loop()
    for action, n, phase in steps:
        instance = made.get(n)
        if action == "add" and instance is None:
            made[n] = Instance.of(record(f"s{n}").model_copy(update={"name": f"Flow{n % 3}"}))
            instances.add(made[n])
        elif instance is None:
            continue
        elif action in ("busy", "idle"):
            instance.busy = action == "busy"
        elif action == "phase":
            instance.record = instance.record.model_copy(update={"phase": phase})
        elif action == "enqueue":
            instance.enqueue(_queued(loop, instance.record.sop_id))
        elif action == "dequeue" and instance.queue:
            instance.dequeue()
        elif action == "passivate":
            for aged in made.values():
                aged.used -= 600
            instances.passivate()
        counts = instances.counts()
        assert {key: value for key, value in counts.items() if key != "passivated"} == _counted_one_by_one(instances)
    loop.close()


def test_a_dropped_instance_changes_no_count() -> None:
    instances = Instances("sopy-host-0", store=None)
    instances.settings = Passivation(max_live=1)
    old = Instance.of(record("old"))
    instances.add(old)
    old.used -= 600
    instances.add(Instance.of(record("new")))
    assert instances.find("old") is None
    old.busy = True
    old.record = old.record.model_copy(update={"phase": "done"})
    assert instances.counts()["sops"] == {"Docflow": {"waiting": 1}} and instances.counts()["busy"] == 0
