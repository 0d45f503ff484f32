"""Killing SOP hosts and procedure actors mid-run loses nothing and applies each event once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors import ProcedureOptions, attach, list_sops
from sopy_actors.errors import RecoveryExhausted, SOPFailed
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.options import STORE_ACTOR, procedure_actor_name
from tests.support import docflow, family, ledger

pytestmark = [pytest.mark.chaos, pytest.mark.usefixtures("runtime")]

SOPS = 50
EVENTS = 8


def _events(sop_index: int) -> list[ledger.EntryAdded]:
    return [ledger.EntryAdded(payload=ledger.EntryData(sender="driver", index=i)) for i in range(EVENTS)]


def test_sigkill_of_a_host_and_a_procedure_actor_mid_run_loses_no_event(runtime: Any) -> None:
    handles = [ledger.make_sop(EVENTS).start() for _ in range(SOPS)]
    sent = {h.sop_id: _events(i) for i, h in enumerate(handles)}
    first = [h.submit(sent[h.sop_id][0]) for h in handles]
    for future in first:
        future.result(timeout=300)  # the procedure actor exists now
    futures = [h.submit(e) for h in handles for e in sent[h.sop_id][1:]]

    host = ray.get_actor("sopy-host-0", namespace=runtime.namespace)
    name = procedure_actor_name("tests.support.ledger:Recording", ProcedureOptions(), 0, ray.get_runtime_context().runtime_env)
    procedure = ray.get_actor(name, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)
    os.kill(ray.get(procedure.location.remote())["pid"], signal.SIGKILL)

    for future in futures:
        future.result(timeout=600)
    for handle in handles:
        final = handle.result(timeout=600)
        assert final.entries == {"driver": list(range(EVENTS))}
        history = handle.history()
        assert [e.event_id for e in history] == [e.id for e in sent[handle.sop_id]]
        assert [e.version for e in history] == list(range(1, EVENTS + 1))


def test_attach_from_a_new_driver_finds_sops_of_a_driver_that_exited(runtime: Any) -> None:
    store_dir = str(Path(runtime.store_path).parent)
    # The session cluster's exact address ("auto" may find another cluster on a shared machine).
    common = (
        f"import sopy_actors; sopy_actors.init({runtime.address!r}, namespace={runtime.namespace!r}, "
        f"store_dir={store_dir!r})\n"
    )
    starter = common + textwrap.dedent("""
        from tests.support import family, ledger
        handle = ledger.make_sop(2).start(sop_id="orphan-of-exited-driver")
        handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="old", index=0)))
        print("started")
    """)
    follower = common + textwrap.dedent("""
        from tests.support import family, ledger
        handle = sopy_actors.attach("orphan-of-exited-driver")
        handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="new", index=1)))
        print(handle.result(timeout=300).entries)
    """)
    root = Path(__file__).resolve().parents[2]
    for code, expected in ((starter, "started"), (follower, "{'old': [0], 'new': [1]}")):
        env = {**os.environ, "RAY_AUTH_MODE": "token"}  # explicit addresses need it (Ray 2.60)
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().splitlines()[-1] == expected
    assert attach("orphan-of-exited-driver").status().phase == "done"


def test_a_child_end_committed_just_before_its_host_died_still_reaches_the_parent(runtime: Any) -> None:
    parent = family.parent_sop().start()
    parent.send(family.SpawnAndWait(payload="quiet"), timeout=120)
    (child_id,) = parent.state().children
    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    stored = ray.get(store.load.remote(child_id, 0))
    host = ray.get_actor(stored.record.host, namespace=runtime.namespace)
    # The child's host commits its End, then dies before telling the parent: write that final
    # checkpoint as the host would have, and kill the host's process.
    state = {**stored.record.state, "data": {**stored.record.state["data"], "output": "QUIET"}}
    final = stored.record.model_copy(update={"phase": "done", "version": stored.record.version + 1, "state": state})
    ray.get(store.commit_batch.remote([Commit(record=final).rows()]))
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)

    # The restarted host finds the untold parent in the Store and tells it, once.
    assert parent.result(timeout=300).results == {"quiet": "QUIET"}
    told = [e for e in parent.history() if e.event_type == "SubSOPCompleted"]
    assert [e.event_id for e in told] == [f"sub-sop-completed-{child_id}"]
    # The host records that the parent was told right after the parent's reply: wait for it.
    deadline = time.monotonic() + 60
    while ray.get(store.pending_notifications.remote(stored.record.host)):
        assert time.monotonic() < deadline, "the child is still marked as owing its parent a result"
        time.sleep(0.1)


def test_a_failed_sop_raises_the_same_error_before_and_after_its_host_restarts(runtime: Any) -> None:
    handle = docflow.make_sop(retry_limits=0).start(placement="dedicated")
    with pytest.raises(RecoveryExhausted) as before:
        handle.send(docflow.DraftWritten(payload=docflow.Draft(text="")))
    with pytest.raises(RecoveryExhausted) as waited:
        handle.result(timeout=60)

    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)

    with pytest.raises(RecoveryExhausted) as after:
        handle.result(timeout=120)  # answered by the restarted host, from the stored record
    for error in (waited.value, after.value):
        assert error.__dict__ == before.value.__dict__ and str(error) == str(before.value)
    assert before.value.attempts == 1 and before.value.last_prompt == "Write a non-empty draft."
    with pytest.raises(SOPFailed, match=r"cannot accept events: .*recovery exhausted"):
        handle.send(docflow.DraftWritten(payload=docflow.Draft(text="late")))


def test_sigkill_of_the_store_mid_run_loses_no_event_and_sops_continue_from_their_last_commit(runtime: Any) -> None:
    handles = [ledger.make_sop(EVENTS).start() for _ in range(SOPS)]
    sent = {h.sop_id: _events(i) for i, h in enumerate(handles)}
    for future in [h.submit(sent[h.sop_id][0]) for h in handles]:
        future.result(timeout=300)
    futures = [h.submit(e) for h in handles for e in sent[h.sop_id][1:]]

    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    killed = ray.get(store.location.remote())["pid"]
    os.kill(killed, signal.SIGKILL)

    for future in futures:
        future.result(timeout=600)
    assert ray.get(store.location.remote(), timeout=300)["pid"] != killed  # Ray restarted it
    for handle in handles:
        assert handle.result(timeout=600).entries == {"driver": list(range(EVENTS))}
        history = handle.history()  # read from the restarted Store's file
        assert [e.event_id for e in history] == [e.id for e in sent[handle.sop_id]]
        assert [e.version for e in history] == list(range(1, EVENTS + 1))
    # New SOPs start and run, and listing reads every SOP back.
    late = ledger.make_sop(1).start()
    late.send(ledger.EntryAdded(payload=ledger.EntryData(sender="late", index=0)))
    assert late.result(timeout=300).entries == {"late": [0]}
    listed = {summary.sop_id for summary in list_sops(phase="done", limit=100_000)}
    assert {h.sop_id for h in handles} | {late.sop_id} <= listed
