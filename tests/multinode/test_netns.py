"""A cluster over a real IP network: head, two workers, PostgreSQL and Redis in Linux network
namespaces (tests/support/netns.py), the Store in PostgreSQL and Ray's GCS state in Redis.

One cluster for the module; each test runs its own deployment (Ray namespace and database),
and a test that lost a worker leaves the next one a restarted worker (`ensure_workers`).
Each fault hits SOPs with steps in flight; every SOP must finish, no step applied twice (final
states) and each event id logged once, in order (the Store's event log). The recovery time
printed is the longest any running SOP went without a commit after the fault.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.multinode.netns_faults import ROOT, cut_worker_link, lose_head, lose_worker_raylet, run_with_fault
from tests.support.netns import RAY, NetnsCluster, netns_unavailable, sigterm_raises

pytestmark = [pytest.mark.multinode, pytest.mark.netns]

SOPY = str(Path(sys.executable).with_name("sopy-actors"))
EXAMPLE = ROOT / "examples" / "hierarchical"


@pytest.fixture(scope="module")
def cluster() -> Iterator[NetnsCluster]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"this machine cannot build the network-namespace cluster: {reason}")
    with sigterm_raises(), NetnsCluster() as built:
        yield built


@pytest.fixture
def healthy(cluster: NetnsCluster) -> NetnsCluster:
    """The module's cluster with both workers running (one lost by an earlier test is restarted)."""
    cluster.ensure_workers()
    return cluster


def show(capsys: pytest.CaptureFixture[str], scenario: str, report: dict[str, Any]) -> None:
    """Print a scenario's figures to the terminal, also under `pytest -q`."""
    keys = ("recovery_seconds", "finished_seconds", "head_restart_seconds", "partition_seconds", "resends", "system_actors")
    with capsys.disabled():
        print(f"\n[netns] {scenario}: " + json.dumps({key: report[key] for key in keys if key in report}))


def assert_every_sop_finished_once(report: dict[str, Any]) -> None:
    assert report["completed"] == report["sops"], report
    assert report["applied_twice"] == 0, report
    assert report["log_exact"] == report["sops"], report


def test_a_workflow_submitted_as_a_ray_job_and_one_run_from_a_worker_node_are_listed_by_status(healthy: NetnsCluster) -> None:
    worker = healthy.workers[0]
    # `sopy-actors run` ships the file's directory as its own working_dir: Ray must be told to
    # let it replace the job's (the same files), or it refuses the two runtime_envs.
    job_env = {"env_vars": {"RAY_OVERRIDE_JOB_RUNTIME_ENV": "1"}}
    job = healthy.run(worker, [
        RAY, "job", "submit", f"--address={healthy.dashboard}", f"--working-dir={EXAMPLE}",
        f"--runtime-env-json={json.dumps(job_env)}", f"--submission-id=hierarchical-{uuid.uuid4().hex[:8]}", "--",
        sys.executable, "-m", "sopy_actors.cli", "run", "main.py", "--address", "auto", "--namespace", "jobs",
    ], cwd=ROOT, timeout=300)
    assert job.returncode == 0 and "succeeded" in job.stdout, job.stdout[-3000:] + job.stderr[-3000:]
    assert "--- final state" in job.stdout
    run = healthy.run(worker, [SOPY, "run", str(EXAMPLE / "main.py"), "--address", healthy.address, "--namespace", "jobs"],
                      cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    status = healthy.run(worker, [SOPY, "status", "--address", healthy.address, "--namespace", "jobs"], cwd=ROOT, timeout=120)
    assert status.returncode == 0, status.stderr[-3000:]
    rows = [line.split() for line in status.stdout.splitlines() if line.split()[-1:] == ["done"]]
    assert len(rows) == 6, status.stdout  # a master and two children from each run
    assert f"store=postgresql://sopy:***@{healthy.db.address}" in run.stdout  # the Store the job created, from the head's env


def test_losing_a_worker_raylet_mid_run_loses_no_sop_and_applies_no_event_twice(
    healthy: NetnsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_with_fault(healthy, "worker-loss", lose_worker_raylet)
    show(capsys, "worker raylet killed", report)
    assert_every_sop_finished_once(report)
    assert healthy.workers[1].namespace.address in report["hosts_before"].values()  # the lost node had a host
    # Procedure actors ran on more than one node. Ray's SPREAD of the 3 replicas is best
    # effort (a CI run once put them on 2 of the 3 nodes), so not necessarily on every node.
    assert len(report["handler_nodes"]) >= 2, report


def test_cutting_a_workers_link_for_30_s_loses_no_sop_and_applies_no_event_twice(
    healthy: NetnsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_with_fault(healthy, "partition", cut_worker_link)
    show(capsys, "worker link cut", report)
    assert_every_sop_finished_once(report)
    assert healthy.workers[1].namespace.address in report["hosts_before"].values()
    # Declared dead during the cut, the node's raylet exits when it hears the cluster again.
    assert report["w2_raylet_after_heal"] is False, report


def test_losing_the_head_and_starting_a_new_one_loses_no_sop_and_applies_no_event_twice(
    healthy: NetnsCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_with_fault(healthy, "head-loss", lose_head)
    show(capsys, "head killed and restarted", report)
    assert_every_sop_finished_once(report)
    assert healthy.head.namespace.address in report["hosts_before"].values()
    assert report["system_actors"] == {"sopy-store": "alive", "sopy-monitor": "alive"}, report
    # A new driver joins the new head and finds every SOP.
    status = healthy.run(healthy.workers[1], [SOPY, "status", "--address", healthy.address, "--namespace", "head-loss"],
                         cwd=ROOT, timeout=120)
    assert status.stdout.count(" done") == report["sops"], status.stdout + status.stderr[-3000:]
    assert "metrics: port=off" not in status.stdout
