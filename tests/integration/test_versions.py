"""Versioned state on the actor runtime: every commit a version; rollback and fork, also after a
host crash; bad input changes nothing; the spec's VersionedState as an ordinary state."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import ray

from sopy_actors.errors import InputError, UnknownSOP
from sopy_actors.runtime.handle import SOPHandle
from tests.support import ledger, versioned

pytestmark = pytest.mark.usefixtures("runtime")


def _entry(index: int, sender: str = "a") -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender=sender, index=index))


def _started(count: int) -> SOPHandle:
    handle = ledger.make_sop(100).start()
    for index in range(count):
        handle.send(_entry(index))
    return handle


def test_every_commit_is_a_version_that_can_be_read_back() -> None:
    handle = _started(3)
    infos = handle.versions()
    assert [(i.version, i.event, i.procedure) for i in infos] == [
        (0, "Started", "Recording"), (1, "EntryAdded", "Recording"), (2, "EntryAdded", "Recording"),
        (3, "EntryAdded", "Recording"),
    ]
    assert infos[1].description == "stayed" and infos[1].at <= time.time()
    assert handle.state(version=0).entries == {}
    assert handle.state(version=2).entries == {"a": [0, 1]}
    assert handle.state().entries == {"a": [0, 1, 2]}


def test_a_rollback_is_a_new_audited_version_and_the_sop_continues_from_it() -> None:
    handle = _started(3)
    assert handle.rollback(1, reason="entry 1 was wrong") == 4
    assert handle.state().entries == {"a": [0]}
    assert handle.status().version == 4
    last = handle.history()[-1]
    assert (last.version, last.event_type, last.outcome) == (4, "Rollback", "rolled_back")
    assert last.prompt == "rolled back to version 1: entry 1 was wrong"
    assert handle.versions()[-1].event == "Rollback"
    assert handle.state(version=3).entries == {"a": [0, 1, 2]}  # history is kept
    handle.send(_entry(7))
    assert handle.state().entries == {"a": [0, 7]} and handle.status().version == 5


def test_a_retried_rollback_call_makes_one_version(runtime: Any) -> None:
    handle = _started(3)
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    first = ray.get(host.rollback.remote(handle.sop_id, 1, "undo", "call-1"))
    again = ray.get(host.rollback.remote(handle.sop_id, 1, "undo", "call-1"))  # as Ray retries a call
    assert first == again == {"value": 4}
    assert [i.version for i in handle.versions()] == [0, 1, 2, 3, 4]
    assert handle.rollback(2, reason="redo") == 5  # another call: another version


def test_a_fork_starts_a_new_sop_from_a_version_with_its_own_history() -> None:
    handle = _started(3)
    fork = handle.fork(2, sop_id=f"fork-{handle.sop_id}")
    assert fork.sop_id == f"fork-{handle.sop_id}"
    status = fork.status()
    assert status.forked_from == {"sop_id": handle.sop_id, "version": 2}
    assert status.version == 0 and fork.state().entries == {"a": [0, 1]}
    assert [(i.version, i.event) for i in fork.versions()] == [(0, "Forked")]
    fork.send(_entry(9, sender="b"))
    assert fork.state().entries == {"a": [0, 1], "b": [9]}
    assert handle.state().entries == {"a": [0, 1, 2]}  # the origin is untouched
    assert handle.status().forked_from is None


def test_bad_version_requests_are_clear_errors_and_change_nothing() -> None:
    handle = _started(2)
    before = (handle.status().version, len(handle.history()), len(handle.versions()))
    with pytest.raises(InputError, match="version 9 does not exist"):
        handle.rollback(9, reason="no such version")
    with pytest.raises(InputError, match="needs a reason"):
        handle.rollback(1, reason=" ")
    with pytest.raises(InputError, match="does not exist or was pruned"):
        handle.state(version=9)
    with pytest.raises(InputError, match="does not exist or was pruned"):
        handle.fork(9)
    with pytest.raises(InputError, match="sop_id"):
        handle.fork(1, sop_id="bad id!")
    with pytest.raises(UnknownSOP):
        SOPHandle("no-such-sop", host=handle.host, namespace=handle.namespace).fork(0)
    with pytest.raises(UnknownSOP):
        SOPHandle("no-such-sop", host=handle.host, namespace=handle.namespace).versions()
    assert (handle.status().version, len(handle.history()), len(handle.versions())) == before


def test_a_pruned_version_cannot_be_rolled_back_to() -> None:
    handle = ledger.make_sop(100).start()
    handle.set_retention(last=2)
    for index in range(34):
        handle.send(_entry(index))
    kept = [info.version for info in handle.versions()]
    assert kept[0] == 16 and kept[-1] == 34
    before = handle.status().version
    with pytest.raises(InputError, match="was pruned"):
        handle.rollback(3, reason="too old")
    assert handle.status().version == before
    assert handle.rollback(20, reason="kept") == before + 1


def test_rollback_and_fork_work_after_a_host_crash(runtime: Any) -> None:
    handle = ledger.make_sop(100).start(placement="dedicated")
    for index in range(3):
        handle.send(_entry(index))
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)  # Ray restarts the host
    deadline = time.monotonic() + 120
    while True:
        try:
            assert handle.rollback(1, reason="after the crash") == 4
            break
        except Exception:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert handle.state().entries == {"a": [0]}
    assert [i.version for i in handle.versions()] == [0, 1, 2, 3, 4]
    fork = handle.fork(3)
    assert fork.state().entries == {"a": [0, 1, 2]}
    handle.send(_entry(5))
    assert handle.state().entries == {"a": [0, 5]}


def test_the_specs_versioned_state_works_as_an_ordinary_state() -> None:
    handle = versioned.make_sop().start()
    handle.send(versioned.Changed(payload=versioned.Change(key="title", value="Draft")))
    handle.send(versioned.Changed(payload=versioned.Change(key="title", value="Final")))
    state = handle.state()
    assert state.version == 3 and state.data == {"title": "Final"}
    assert [h["description"] for h in state.get_version_history()] == ["set title", "set title"]
    handle.send(versioned.Changed(payload=versioned.Change(rollback_to=2)))
    assert handle.state().data == {"title": "Draft"} and handle.state().version == 2
    receipt = handle.send(versioned.Changed(payload=versioned.Change(rollback_to=9)))
    assert receipt.rejected and "no version 9" in (receipt.prompt or "")
    assert handle.state(version=2).data == {"title": "Final"}  # the runtime's versions too
    handle.send(versioned.Finished(payload=None))
    assert handle.result().data == {"title": "Draft"}


def test_the_cli_lists_rolls_back_and_forks(runtime: Any) -> None:
    from tests.examples.cli import on_cluster, run_cli

    handle = _started(2)
    listed = run_cli("history", handle.sop_id, *on_cluster(runtime))
    assert listed.returncode == 0, listed.stderr
    assert f"{handle.sop_id}: 3 versions" in listed.stdout and "Started" in listed.stdout and "EntryAdded" in listed.stdout
    rolled = run_cli("rollback", handle.sop_id, "1", "--reason", "from the CLI", *on_cluster(runtime))
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled back to version 1 as version 3" in rolled.stdout
    assert handle.state().entries == {"a": [0]}
    forked = run_cli("fork", handle.sop_id, "2", "--sop-id", f"cli-fork-{handle.sop_id}", *on_cluster(runtime))
    assert forked.returncode == 0, forked.stderr
    assert SOPHandle(f"cli-fork-{handle.sop_id}", host=handle.host, namespace=handle.namespace).versions()
    missing = run_cli("rollback", handle.sop_id, "99", "--reason", "x", *on_cluster(runtime))
    assert missing.returncode == 2 and "version 99 does not exist" in missing.stderr
