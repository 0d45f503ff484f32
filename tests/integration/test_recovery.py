"""The recovery ladder on the actor runtime: each rung, durable retries, waiting for a person."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import ray

import sopy_actors
from sopy_actors import SOP
from sopy_actors.errors import AwaitingHuman, InputError, RecoveryExhausted, SOPFailed, TimedOut
from sopy_actors.recovery import Manual, RecoveryPolicy, Retry
from sopy_actors.runtime.handle import SOPHandle
from tests.examples.cli import ROOT, on_cluster, run_cli
from tests.support import recovering as flow
from tests.support.monitoring import samples, scrape, settled, value, wait_for
from tests.support.processes import run_driver
from tests.unit.recovery import spec_recovery as spec
from tests.unit.recovery.test_spec_recovery import action as spec_action

pytestmark = pytest.mark.usefixtures("runtime")


def wait_until(check: Any, *, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def waiting(handle: SOPHandle) -> bool:
    return handle.status().phase == "waiting_for_human"


def strategies(handle: SOPHandle) -> list[tuple[str, str]]:
    return [(entry["strategy"], entry["outcome"]) for entry in handle.status().recovery]


def test_a_retryable_failure_is_retried_after_a_backoff_and_then_succeeds(tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    handle = flow.make_sop(flow.RetryThenFallback(), counter, fail_times=2).start()
    receipt = handle.send(flow.Work("tides"))
    assert receipt.outcome == "recovering" and "retry 1 in 0.20 s" in str(receipt.prompt)
    state = handle.result(timeout=60)
    assert state.log == ["summarised tides via primary"]
    assert counter.read_text() == "3"  # two failures, then the second retry
    assert strategies(handle) == [("retry", "failed"), ("retry", "succeeded")]
    outcomes = [(entry.event_type, entry.outcome) for entry in handle.history()]
    assert outcomes == [("Work", "recovering"), ("Work", "recovering"), ("Work", "ended")]


def test_a_retry_predicate_runs_with_the_workflows_code_and_decides(tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    handle = flow.make_sop(flow.PickyRetry(), counter, fail_times=2, fatal=True).start()
    assert handle.send(flow.Work("tides")).outcome == "recovering"  # ValueError, but the predicate says retry
    wait_until(lambda: counter.exists() and counter.read_text() == "2", what="the retry")
    time.sleep(1.0)
    assert counter.read_text() == "2"  # "on call 2": the predicate says no, and no rung is left
    with pytest.raises(RecoveryExhausted, match="HandlerError is not retryable"):
        handle.result(timeout=30)
    assert strategies(handle) == [("retry", "failed"), ("none", "gave_up")]


def test_after_its_retries_the_ladder_falls_back_to_another_procedure_which_takes_the_event(tmp_path: Path) -> None:
    handle = flow.make_sop(flow.RetryThenFallback(), tmp_path / "calls", fail_times=10).start()
    handle.send(flow.Work("tides"))
    assert handle.result(timeout=60).log == ["cheap summary of tides"]
    assert strategies(handle) == [("retry", "failed"), ("retry", "failed"), ("fallback", "succeeded")]
    moves = [(entry.from_procedure, entry.to_procedure, entry.outcome) for entry in handle.history()]
    assert moves == [
        ("RetryThenFallback", "RetryThenFallback", "recovering"),
        ("RetryThenFallback", "RetryThenFallback", "recovering"),
        ("RetryThenFallback", "CheapSummary", "recovering"),
        ("CheapSummary", "End", "ended"),
    ]


def test_an_agent_fallback_sends_the_failed_agents_work_to_the_backup_agent(tmp_path: Path) -> None:
    handle = flow.make_sop(flow.AskAnAgent(), tmp_path / "calls").start()
    receipt = handle.send(flow.Work("tides"))
    assert receipt.outcome == "recovering" and "send the work of summariser-primary to agent summariser-backup" in str(
        receipt.prompt
    )
    assert handle.result(timeout=120).log == ["a backup summary"]
    assert strategies(handle) == [("fallback", "succeeded")]
    cause = handle.status().recovery[0]["cause"]
    assert (cause["kind"], cause["error"]["type"]) == ("agent_error", "AgentError")


def test_an_alternative_approach_from_the_state_is_tried_with_the_same_event(tmp_path: Path) -> None:
    handle = flow.make_sop(flow.TryApproaches(), tmp_path / "calls", fail_times=2, fatal=True).start()
    handle.send(flow.Work("tides"))
    state = handle.result(timeout=60)
    assert state.current_approach == "extractive"
    assert state.log == ["summarised tides via extractive"]
    assert strategies(handle) == [("alternative", "failed"), ("alternative", "succeeded")]


def test_a_manual_step_waits_for_a_person_who_resolves_it(tmp_path: Path) -> None:
    handle = flow.make_sop(flow.AskAPerson(), tmp_path / "calls", fail_times=1, fatal=True).start()
    receipt = handle.send(flow.Work("tides"))
    assert receipt.outcome == "recovering"
    status = handle.status()
    assert status.phase == "waiting_for_human"
    assert status.waiting is not None and status.waiting["reason"] == "the summary service refuses this text"
    assert status.waiting["choices"] == ["retry", "skip", "fallback", "abort"]
    assert status.waiting["cause"]["kind"] == "handler_raised"
    with pytest.raises(AwaitingHuman):  # nothing else gets in while it waits
        handle.send(flow.Work("again"))
    resolved = handle.resolve("retry", note="the service is back", by="ops@example.com")
    assert resolved.phase in ("waiting", "running", "done")
    assert handle.result(timeout=60).log == ["summarised tides via primary"]
    entry = handle.status().recovery[-1]
    assert (entry["strategy"], entry["outcome"], entry["by"], entry["note"]) == (
        "manual", "resolved", "ops@example.com", "the service is back"
    )


def test_a_person_can_answer_with_an_event_fallback_or_abort(tmp_path: Path) -> None:
    by_event = flow.make_sop(flow.AskAPerson(), tmp_path / "a", fail_times=5, fatal=True).start()
    by_event.send(flow.Work("tides"))
    by_event.resolve(flow.Approve("looks fine"), by="lead")
    assert by_event.result(timeout=30).log == ["approved: looks fine"]

    by_fallback = flow.make_sop(flow.AskAPerson(), tmp_path / "b", fail_times=5, fatal=True).start()
    by_fallback.send(flow.Work("tides"))
    by_fallback.resolve("fallback")
    assert by_fallback.result(timeout=30).log == ["cheap summary of tides"]  # the fallback took the event

    aborted = flow.make_sop(flow.AskAPerson(), tmp_path / "c", fail_times=5, fatal=True).start()
    aborted.send(flow.Work("tides"))
    aborted.resolve("abort", note="not worth it", by="lead")
    with pytest.raises(SOPFailed, match="aborted by lead: not worth it"):
        aborted.result(timeout=30)


def test_bad_resolutions_are_refused_and_change_nothing(tmp_path: Path) -> None:
    running = flow.make_sop(flow.AskAPerson(), tmp_path / "a").start()
    with pytest.raises(InputError, match="not waiting for a person"):
        running.resolve("retry")
    handle = flow.make_sop(flow.AskAPerson(), tmp_path / "b", fail_times=5, fatal=True).start()
    handle.send(flow.Work("tides"))
    before = handle.status()
    with pytest.raises(InputError, match="field 'action'") as unknown:
        handle.resolve("launch")
    assert unknown.value.fields == ("action",)
    with pytest.raises(InputError, match="does not take this event"):
        handle.resolve(flow.Work("again"))  # Work is handled, but fails: refused as a rejection
    with pytest.raises(InputError, match="does not fit"):
        handle.resolve({"type": "tests.support.recovering:Approve", "data": {"payload": {"not": "a str"}}})
    with pytest.raises(InputError, match="'type' is missing"):
        handle.resolve({})
    assert handle.status() == before
    policy = RecoveryPolicy(rungs=[Manual(reason="check the input", choices=["skip", "abort"])])
    narrow = flow.make_sop(flow.Summarise(), tmp_path / "c", fail_times=1, fatal=True, recovery=policy).start()
    narrow.send(flow.Work("tides"))
    with pytest.raises(InputError, match="action 'retry' is not offered: this SOP offers skip, abort"):
        narrow.resolve("retry")
    assert waiting(narrow)


def test_when_the_ladder_is_exhausted_the_sop_fails_with_the_reason(tmp_path: Path) -> None:
    policy = RecoveryPolicy(rungs=[Retry(max_attempts=1, backoff=flow.FAST)])
    handle = flow.make_sop(flow.Summarise(), tmp_path / "calls", fail_times=5, recovery=policy).start()
    handle.send(flow.Work("tides"))
    with pytest.raises(RecoveryExhausted, match="1 of 1 attempts used"):
        handle.result(timeout=60)
    assert strategies(handle) == [("retry", "failed"), ("none", "gave_up")]


def test_a_policy_that_does_not_cover_a_cause_leaves_sopy_semantics_alone(tmp_path: Path) -> None:
    policy = RecoveryPolicy(rungs=[Retry(on="agent_error")])
    handle = flow.make_sop(flow.Summarise(), tmp_path / "calls", fail_times=1, recovery=policy).start()
    receipt = handle.send(flow.Work("tides"))
    assert receipt.outcome == "rejected"  # SOPy: a raising handler rejects the event
    assert handle.status().recovery == []


def test_a_procedure_timeout_fails_the_sop_or_asks_its_policy(tmp_path: Path) -> None:
    plain = flow.make_sop(flow.Deadline(), tmp_path / "a").start()
    with pytest.raises(TimedOut, match=r"timeout of 0\.5 s"):
        plain.result(timeout=60)
    escalated = flow.make_sop(flow.EscalatingDeadline(), tmp_path / "b").start()
    wait_until(lambda: waiting(escalated), what="the escalation")
    assert escalated.status().waiting["cause"]["kind"] == "timeout"  # type: ignore[index]
    escalated.resolve("skip", by="lead")
    assert escalated.send(flow.Approve("late but fine")).outcome == "ended"
    approved = flow.make_sop(flow.Deadline(), tmp_path / "c").start()
    approved.send(flow.Approve("in time"))
    time.sleep(1.0)  # its timer fires after it left the procedure: ignored
    assert approved.status().phase == "done"


def test_a_retry_pending_across_a_host_kill_fires_once(tmp_path: Path, runtime: Any) -> None:
    counter = tmp_path / "calls"
    handle = flow.make_sop(flow.SlowRetry(), counter, fail_times=1).start(placement="dedicated")
    assert handle.send(flow.Work("tides")).outcome == "recovering"
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)  # Ray restarts the host
    assert handle.result(timeout=120).log == ["summarised tides via primary"]
    time.sleep(1.0)
    assert counter.read_text() == "2"  # the failure, then the retry: once
    assert [entry.outcome for entry in handle.history()] == ["recovering", "ended"]


def test_an_sop_waiting_for_a_person_survives_a_host_kill(tmp_path: Path, runtime: Any) -> None:
    policy = RecoveryPolicy(rungs=[Manual(reason="check the input")])
    handle = flow.make_sop(flow.Summarise(), tmp_path / "calls", fail_times=1, recovery=policy).start(
        placement="dedicated"
    )
    handle.send(flow.Work("tides"))
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)
    wait_until(lambda: waiting(handle), timeout=120, what="the host's restart")
    handle.resolve("retry", by="ops")
    assert handle.result(timeout=60).log == ["summarised tides via primary"]


DRIVER = """
import os
import sys
from pathlib import Path

sys.path.insert(0, os.getcwd())
import sopy_actors
from sopy_actors import SOP
from sopy_actors.recovery import Manual, RecoveryPolicy
from tests.support import recovering as flow

address, namespace, store_dir, counter = sys.argv[1:5]
tests = str(Path("tests").resolve())
code = {"py_modules": [tests], "excludes": ["__pycache__"]}
sopy_actors.init(address=address, namespace=namespace, store_dir=store_dir, runtime_env=code, log_to_driver=False)
policy = RecoveryPolicy(rungs=[Manual(reason="check the input", choices=["retry", "skip", "abort"])])
for sop_id in ("left-by-driver-1", "left-by-driver-2"):
    sop = flow.make_sop(flow.Summarise(), Path(counter + sop_id), fail_times=1, fatal=True, recovery=policy)
    print(sop.start(sop_id=sop_id).send(flow.Work("tides")).outcome)
"""


def test_a_waiting_sop_outlives_its_driver_and_is_resolved_from_another_driver_and_the_cli(
    tmp_path: Path, runtime: Any
) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    store_dir = str(Path(runtime.store_path).parent)
    args = [runtime.address, runtime.namespace, store_dir, str(tmp_path / "calls-")]
    done = run_driver([sys.executable, str(script), *args], cwd=ROOT, timeout=300, env={"RAY_AUTH_MODE": "token"})
    outcomes = [line for line in done.stdout.splitlines() if not line.startswith("\x1b")]  # not Ray's own warnings
    assert (done.returncode, outcomes) == (0, ["recovering", "recovering"]), done.stderr[-3000:]

    listed = run_cli("status", "--waiting", *on_cluster(runtime))
    assert listed.returncode == 0, listed.stderr
    assert "left-by-driver-1" in listed.stdout and "left-by-driver-2" in listed.stdout
    assert "reason: check the input" in listed.stdout and "choices: retry, skip, abort" in listed.stdout

    note = ("--note", "duplicate", "--by", "ops")
    resolved = run_cli("resolve", "left-by-driver-1", "--action", "skip", *note, *on_cluster(runtime))
    assert resolved.returncode == 0, resolved.stderr
    assert "left-by-driver-1: waiting in Summarise" in resolved.stdout
    refused = run_cli("resolve", "left-by-driver-1", "--action", "skip", *on_cluster(runtime))
    assert refused.returncode == 2 and "is not waiting for a person" in refused.stderr

    other = sopy_actors.attach("left-by-driver-2")  # this process is a new driver for it
    other.resolve("retry", by="lead")
    assert other.result(timeout=60).log == ["summarised tides via primary"]
    first = sopy_actors.attach("left-by-driver-1").status().recovery[-1]
    assert (first["outcome"], first["by"], first["note"]) == ("resolved", "ops", "duplicate")


def test_the_metric_counts_exactly_the_steps_taken(tmp_path: Path, runtime: Any) -> None:
    def steps() -> dict[tuple[str, str], float]:
        text = scrape(f"http://127.0.0.1:{runtime.metrics_port}/metrics")
        return {
            (labels["strategy"], labels["outcome"]): value
            for (name, pairs), value in samples(text).items()
            if name == "sopy_recovery_steps_total" and (labels := dict(pairs))
        }

    before = settled(steps)  # steps of earlier tests may still be on their way to the Monitor
    handle = flow.make_sop(flow.RetryThenFallback(), tmp_path / "calls", fail_times=10).start()
    handle.send(flow.Work("tides"))
    handle.result(timeout=60)
    expected = {("retry", "failed"): 2.0, ("fallback", "succeeded"): 1.0}

    def counted() -> dict[tuple[str, str], float]:
        now = steps()
        return {key: now.get(key, 0.0) - before.get(key, 0.0) for key in {*now, *before} if now.get(key) != before.get(key)}

    wait_for(lambda: counted() == expected, timeout=60, what=f"the recovery steps {expected}")
    time.sleep(2.0)
    assert counted() == expected


def test_the_specs_multi_level_recovery_runs_as_written_on_the_actor_runtime() -> None:
    handle = spec.recovery_sop("cached summary", "extractive summary").start()
    actions, state = [], handle.state()
    for _ in range(7):
        failure = spec.OperationFailed(spec.Failure(message="the summariser timed out", retryable=True))
        assert handle.send(failure).outcome == "transitioned"
        before, state = state, handle.state()
        actions.append(spec_action(before, state))
    assert actions == [
        "retry", "retry", "retry", "fallback", "alternative:cached summary", "alternative:extractive summary", "manual"
    ]
    assert handle.status().procedure == "ContinueOperation" and handle.status().retries == 0
    assert handle.send(spec.OperationSucceeded("summary written")).outcome == "ended"
    assert handle.result(timeout=30).requires_manual_intervention


def test_a_parent_observes_its_child_waiting_for_a_person(tmp_path: Path) -> None:
    parent = SOP(flow.Supervisor(counter=str(tmp_path / "calls")), flow.Supervising()).start()
    parent.send(flow.Delegate("tides"))
    wait_until(lambda: parent.state().asked, what="HumanInterventionRequested at the parent")
    child = parent.state().children[0]
    assert parent.state().asked == [f"{child}: a person must check the text"]
    assert sopy_actors.attach(child).status().phase == "waiting_for_human"


def test_sops_waiting_for_a_person_show_in_the_instances_gauge(tmp_path: Path, runtime: Any) -> None:
    policy = RecoveryPolicy(rungs=[Manual(reason="check the input")])
    handle = flow.make_sop(flow.Summarise(), tmp_path / "calls", fail_times=1, fatal=True, recovery=policy).start()
    handle.send(flow.Work("tides"))
    url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"
    wait_for(
        lambda: value(scrape(url), "sopy_sop_instances", sop="Summarise", phase="waiting_for_human") >= 1,
        timeout=60,
        what="sopy_sop_instances{phase=waiting_for_human}",
    )
