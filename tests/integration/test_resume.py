"""A driver's own cluster: init() starts a new one, a new cluster resumes a store, no secret at rest.

Every test runs its drivers as subprocesses, each starting (and, by exiting, stopping) a local
cluster of its own in a private Ray temp directory; nothing here uses the session cluster. A
test stops only processes whose command line names its own temp directory.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import stop_processes_of

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
NAMESPACE = "resume"


@pytest.fixture
def ray_temp() -> Iterator[str]:
    """A private Ray temp directory (short: Ray's socket paths must stay under the Unix limit)."""
    directory = tempfile.mkdtemp(prefix="sopy-r-", dir="/tmp")
    yield directory
    stop_processes_of(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A frozen copy of the test workflows, where the drivers run and which they ship.

    The drivers ship it as a user ships their code (runtime_env py_modules). A copy, because a
    resumed SOP's procedure actor needs the very package its first cluster had: the second
    driver must ship byte-identical code, which a work tree being edited may not be.
    """
    tests = tmp_path / "code" / "tests"
    shutil.copytree(ROOT / "tests" / "support", tests / "support", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "__init__.py", tests / "__init__.py")
    return tests.parent


def _shipped(code: Path) -> dict[str, Any]:
    return {"py_modules": [str(code / "tests")], "excludes": ["__pycache__"]}


def _env(ray_temp: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    # Explicit-address drivers and `ray start` need token auth as the clusters use it (Ray 2.60).
    env.update(RAY_TMPDIR=ray_temp, RAY_AUTH_MODE="token", AWS_EC2_METADATA_DISABLED="true", **extra)
    return env


def _drive(script: str, env: dict[str, str], *, cwd: Path = ROOT, timeout: float = 600) -> Any:
    """Run a driver script in `cwd`; the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- issue 10.4: a new cluster over an old store directory resumes its SOPs -----------------

FIRST_DRIVER = """
    import json
    import ray
    import sopy_actors
    from sopy_actors.runtime.options import STORE_ACTOR
    from sopy_actors.runtime.commits import Commit
    from tests.support import family, ledger

    ns = {ns!r}
    sopy_actors.init(
        namespace=ns, store_dir={store_dir!r}, num_cpus=2, log_to_driver=False, monitoring=False, runtime_env={code!r}
    )

    def entry(sender, index):
        return ledger.EntryAdded(id=f"{{sender}}-{{index}}", payload=ledger.EntryData(sender=sender, index=index))

    for handle in (
        ledger.make_sop(4).start(sop_id="dedicated", placement="dedicated"),
        ledger.make_sop(4).start(sop_id="pooled"),
    ):
        for index in (0, 1):
            handle.send(entry("first", index))
    waiting = family.parent_sop().start(sop_id="waiting-parent", placement="dedicated")
    waiting.send(family.SpawnAndWait(payload="later"))
    untold = family.parent_sop().start(sop_id="untold-parent", placement="dedicated")
    untold.send(family.SpawnAndWait(payload="quiet"))
    # The untold parent's child ends and its host commits that, but the head is lost before
    # the parent is told: the commit the host would have made, then every process killed.
    store = ray.get_actor(STORE_ACTOR, namespace=ns)
    (child,) = untold.state().children
    stored = ray.get(store.load.remote(child, 0)).record
    state = {{**stored.state, "data": {{**stored.state["data"], "output": "QUIET"}}}}
    final = stored.model_copy(update={{"phase": "done", "version": stored.version + 1, "state": state}})
    ray.get(store.commit_batch.remote([Commit(record=final).rows()]))
    node = ray.get_runtime_context().get_node_id()
    print(json.dumps({{"node": node, "waiting_child": waiting.state().children[0]}}), flush=True)
    # The head node is lost: every process of this one-node cluster killed at once, nothing shut down.
    import os, psutil
    for process in psutil.Process().children(recursive=True):
        process.kill()
    os._exit(0)
"""

SECOND_DRIVER = """
    import json, subprocess, sys
    import ray
    import sopy_actors
    from tests.support import family, ledger

    info = sopy_actors.init(
        namespace={ns!r}, store_dir={store_dir!r}, num_cpus=2, log_to_driver=False, monitoring=False, runtime_env={code!r}
    )
    out = {{"node": ray.get_runtime_context().get_node_id()}}

    def running(name):
        try:
            ray.get_actor(name, namespace={ns!r})
            return True
        except ValueError:
            return False

    # Before anyone attaches: init() brought back the hosts of the unfinished SOPs.
    dedicated_hosts = ["sopy-host-sop-dedicated", "sopy-host-sop-untold-parent", "sopy-host-sop-waiting-parent"]
    out["hosts"] = [name for name in dedicated_hosts if running(name)]

    def entry(sender, index):
        return ledger.EntryAdded(id=f"{{sender}}-{{index}}", payload=ledger.EntryData(sender=sender, index=index))

    for sop_id in ("dedicated", "pooled"):
        handle = sopy_actors.attach(sop_id)
        before = handle.status()
        resent = handle.send(entry("first", 1))  # its sender did not know it had arrived
        for index in (2, 3):
            handle.send(entry("second", index))
        out[sop_id] = {{
            "before": [before.phase, before.version],
            "resent_version": resent.version,
            "entries": handle.result(timeout=120).entries,
            "history": [e.event_id for e in handle.history()],
            "phase": handle.status().phase,
        }}

    child = sopy_actors.attach({waiting_child!r})
    child.send(family.WorkGiven(payload="later"))
    for sop_id in ("waiting-parent", "untold-parent"):
        parent = sopy_actors.attach(sop_id)
        out[sop_id] = {{
            "results": parent.result(timeout=120).results,
            "told": [e.event_id for e in parent.history() if e.event_type == "SubSOPCompleted"],
            "phase": parent.status().phase,
        }}

    # The CLI finds this cluster's Store (not in the default directory) without --store-dir.
    cli = [sys.executable, "-m", "sopy_actors.cli"]
    where = ["--address", info.address, "--namespace", {ns!r}]
    status = subprocess.run(cli + ["status"] + where, capture_output=True, text=True, timeout=300)
    attach = subprocess.run(cli + ["attach", "dedicated"] + where, capture_output=True, text=True, timeout=300)
    out["cli"] = [status.returncode, status.stdout, status.stderr, attach.returncode, attach.stdout, attach.stderr]
    print(json.dumps(out))
    sopy_actors.shutdown()
"""


def test_a_new_cluster_on_the_same_store_dir_resumes_every_unfinished_sop_and_applies_each_event_once(
    ray_temp: str, code: Path, tmp_path: Path
) -> None:
    store_dir = str((tmp_path / "store").resolve())
    env = _env(ray_temp, SOPY_STORE_DIR=str(tmp_path / "not-the-store"))
    first = _drive(FIRST_DRIVER.format(ns=NAMESPACE, store_dir=store_dir, code=_shipped(code)), env, cwd=code)
    stop_processes_of(ray_temp)  # whatever the first cluster may have left: it is gone

    second = _drive(
        SECOND_DRIVER.format(ns=NAMESPACE, store_dir=store_dir, code=_shipped(code), waiting_child=first["waiting_child"]),
        env,
        cwd=code,
    )

    assert second["node"] != first["node"]  # a new cluster
    assert second["hosts"] == ["sopy-host-sop-dedicated", "sopy-host-sop-untold-parent", "sopy-host-sop-waiting-parent"]
    for sop_id in ("dedicated", "pooled"):
        assert second[sop_id] == {
            "before": ["waiting", 2],
            "resent_version": 2,  # the receipt of its first delivery, not a second commit
            "entries": {"first": [0, 1], "second": [2, 3]},
            "history": ["first-0", "first-1", "second-2", "second-3"],
            "phase": "done",
        }
    assert second["waiting-parent"] == {
        "results": {"later": "LATER"},
        "told": [f"sub-sop-completed-{first['waiting_child']}"],
        "phase": "done",
    }
    assert second["untold-parent"]["results"] == {"quiet": "QUIET"}
    assert len(second["untold-parent"]["told"]) == 1 and second["untold-parent"]["phase"] == "done"
    status_code, status_out, status_err, attach_code, attach_out, attach_err = second["cli"]
    assert (status_code, status_err) == (0, ""), status_err
    assert f"store={store_dir}/store.sqlite3" in status_out
    assert {"dedicated", "pooled", "waiting-parent", "untold-parent"} <= {line.split()[0] for line in status_out.splitlines()}
    assert (attach_code, attach_err) == (0, ""), attach_err
    assert "v4: EntryAdded Recording -> End (ended)" in attach_out


# -- issue 12: timers and SOPs waiting for a person outlive the whole cluster -----------------

PAUSING_DRIVER = """
    import json, time
    from pathlib import Path
    import sopy_actors
    from sopy_actors.recovery import Manual, RecoveryPolicy
    from tests.support import ledger, recovering

    sopy_actors.init(
        namespace={ns!r}, store_dir={store_dir!r}, num_cpus=2, log_to_driver=False, monitoring=False, runtime_env={code!r}
    )
    timed = ledger.make_sop(4).start(sop_id="timed")
    timed.schedule(ledger.EntryAdded(id="late-0", payload=ledger.EntryData(sender="timer", index=0)), after=3.0)
    policy = RecoveryPolicy(rungs=[Manual(reason="check the text")])
    sop = recovering.make_sop(recovering.Summarise(), Path({counter!r}), fail_times=1, fatal=True, recovery=policy)
    paused = sop.start(sop_id="paused")
    paused.send(recovering.Work("tides"))
    print(json.dumps({{"due": time.time() + 3.0, "phase": paused.status().phase, "timed": timed.status().version}}))
    sopy_actors.shutdown()
"""

RESOLVING_DRIVER = """
    import json, time
    import sopy_actors

    sopy_actors.init(
        namespace={ns!r}, store_dir={store_dir!r}, num_cpus=2, log_to_driver=False, monitoring=False, runtime_env={code!r}
    )
    timed = sopy_actors.attach("timed")
    deadline = time.monotonic() + 120
    while timed.status().version < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    paused = sopy_actors.attach("paused")
    phase = paused.status().phase
    paused.resolve("retry", note="checked", by="night shift")
    print(json.dumps({{
        "timed": [timed.status().version, [e.event_id for e in timed.history()]],
        "phase": phase,
        "log": paused.result(timeout=120).log,
        "by": paused.status().recovery[-1]["by"],
    }}))
    sopy_actors.shutdown()
"""


def test_a_timer_due_and_an_sop_waiting_for_a_person_outlive_the_whole_cluster(
    ray_temp: str, code: Path, tmp_path: Path
) -> None:
    store_dir = str((tmp_path / "store").resolve())
    env = _env(ray_temp)
    values = {"ns": "pausing", "store_dir": store_dir, "code": _shipped(code), "counter": str(tmp_path / "calls")}
    first = _drive(PAUSING_DRIVER.format(**values), env, cwd=code)
    stop_processes_of(ray_temp)
    assert (first["phase"], first["timed"]) == ("waiting_for_human", 0)
    time.sleep(max(0.0, first["due"] - time.time()) + 0.5)  # the timer falls due while no cluster runs

    second = _drive(RESOLVING_DRIVER.format(**values), env, cwd=code)
    assert second["timed"] == [1, ["late-0"]]  # fired on start, once
    assert second["phase"] == "waiting_for_human"
    assert second["log"] == ["summarised tides via primary"] and second["by"] == "night shift"


# -- issue 10.7: init() with no address starts a new cluster, whatever the environment says ---

INIT_DRIVER = """
    import json
    import ray
    import sopy_actors

    sopy_actors.init(namespace="isolated", store_dir={store_dir!r}, num_cpus=1, log_to_driver=False, monitoring=False)
    print(json.dumps({{"address": ray.get_runtime_context().gcs_address}}))
    sopy_actors.shutdown()
"""


def _free_port() -> int:
    # An ephemeral port: outside Ray's default worker port range (10002-19999).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_init_without_an_address_never_joins_a_cluster_named_by_the_environment_live_or_dead(
    ray_temp: str, tmp_path: Path
) -> None:
    env = _env(ray_temp)
    ray_dir = Path(ray_temp) / "ray"  # Ray's temp directory under RAY_TMPDIR, where it looks
    started = subprocess.run(
        [str(RAY), "start", "--head", f"--port={_free_port()}", f"--temp-dir={ray_dir}", "--num-cpus=1",
         "--disable-usage-stats", "--include-dashboard=false"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert started.returncode == 0, started.stderr[-3000:]
    head = (ray_dir / "ray_current_cluster").read_text().strip()  # what a plain ray.init() joins
    code = INIT_DRIVER.format(store_dir=str(tmp_path / "store"))

    beside_a_recorded_head = _drive(code, env, timeout=300)
    beside_a_live_head = _drive(code, {**env, "RAY_ADDRESS": head}, timeout=300)
    stop_processes_of(ray_temp)  # the head is dead now; its address is still in the environment
    started_at = time.monotonic()
    beside_a_dead_head = _drive(code, {**env, "RAY_ADDRESS": head}, timeout=150)

    assert beside_a_recorded_head["address"] != head
    assert beside_a_live_head["address"] != head
    assert beside_a_dead_head["address"] != head
    assert time.monotonic() - started_at < 150


# -- issue 10.9: API keys given through runtime_env never reach the disk ----------------------

SECRET_DRIVER = """
    import json
    from pathlib import Path
    import ray
    import sopy_actors
    from sopy_actors import ScriptedModel, StrandsAgent
    from tests.support import family, ledger

    sopy_actors.init(
        namespace="secrets", store_dir={store_dir!r}, num_cpus=2, log_to_driver=False, metrics_port=0,
        runtime_env={{**{code!r}, "env_vars": {{"OPENAI_API_KEY": {secret!r}}}}},
    )
    handle = ledger.make_sop(1).start(placement="dedicated")
    handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="driver", index=0)))
    parent = family.parent_sop().start()  # a child started by a handler, in a procedure actor
    parent.send(family.SpawnBlocking(payload="child"))
    agent = StrandsAgent(model=ScriptedModel(["hello from the offline model"]), name="keyholder")
    answer = agent("hi", conversation="kept")
    pid = ray.get(ray.get_actor(agent.actor_name(), namespace="secrets").location.remote())["pid"]
    print(json.dumps({{
        "result": handle.result(timeout=120).entries,
        "child": parent.state().results,
        "answer": answer.text,
        "key_in_agent_process": {secret!r}.encode() in Path(f"/proc/{{pid}}/environ").read_bytes(),
    }}))
    sopy_actors.shutdown()
"""


def test_api_keys_given_in_the_runtime_env_are_in_no_file_of_the_store_dir(
    ray_temp: str, code: Path, tmp_path: Path
) -> None:
    secret = f"sk-planted-{uuid.uuid4().hex}"
    store_dir = tmp_path / "store"

    out = _drive(SECRET_DRIVER.format(store_dir=str(store_dir), code=_shipped(code), secret=secret), _env(ray_temp), cwd=code)

    assert out == {
        "result": {"driver": [0]},
        "child": {"child": "CHILD"},
        "answer": "hello from the offline model",
        "key_in_agent_process": True,  # the job's workers still get it (Ray's env_vars inheritance)
    }
    files = [path for path in store_dir.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"store.sqlite3", "monitor.sqlite3"} <= names
    assert any("sessions" in path.parts for path in files)  # the agent's conversation is on disk
    assert [str(path) for path in files if secret.encode() in path.read_bytes()] == []
