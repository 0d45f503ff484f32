"""What a new cluster needs from an old store, and what a job's runtime_env leaves at rest (no Ray)."""

from __future__ import annotations

from pathlib import Path

from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.options import ProcedureOptions, code_runtime_env, procedure_actor_name, runtime_env_key
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.runtime.store import SQLiteStore


def _record(sop_id: str, host: str, **changes: object) -> SOPRecord:
    return SOPRecord(
        sop_id=sop_id,
        name="Docflow",
        host=host,
        procedure={"type": "m:Drafting", "name": "Drafting", "data": {}},
        state={"type": "m:Doc", "data": {}},
        **changes,
    )


def test_unfinished_hosts_are_those_of_running_sops_and_of_ended_children_whose_parent_was_not_told(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    records = [
        _record("running", "sopy-host-sop-running"),
        _record("pooled", "sopy-host-1"),
        _record("also-pooled", "sopy-host-1"),
        _record("untold", "sopy-host-0", parent_id="running", phase="done"),
        _record("told", "sopy-host-sop-told", parent_id="running", phase="done", parent_notified=True),
        _record("failed", "sopy-host-sop-failed", phase="failed"),
        _record("cancelled", "sopy-host-sop-cancelled", phase="cancelled"),
    ]
    for record in records:
        store.create(record.model_copy(update={"phase": "running", "parent_notified": False}))
    store.write([Commit(record=record).rows() for record in records])

    assert store.unfinished_hosts() == ["sopy-host-0", "sopy-host-1", "sopy-host-sop-running"]

    store.write([Commit(record=records[3].model_copy(update={"parent_notified": True})).rows()])
    assert store.unfinished_hosts() == ["sopy-host-1", "sopy-host-sop-running"]


def test_the_code_runtime_env_keeps_the_code_and_drops_env_var_values() -> None:
    job = {"py_modules": ["gcs://_ray_pkg_1f.zip"], "env_vars": {"OPENAI_API_KEY": "sk-secret"}}

    assert code_runtime_env(job) == {"py_modules": ["gcs://_ray_pkg_1f.zip"]}
    assert code_runtime_env({"env_vars": {"OPENAI_API_KEY": "sk-secret"}}) is None
    assert code_runtime_env({}) is None and code_runtime_env(None) is None
    assert job["env_vars"] == {"OPENAI_API_KEY": "sk-secret"}  # the caller's dict is left alone


def test_actor_names_do_not_depend_on_the_values_of_a_jobs_env_vars() -> None:
    def name(key: str) -> str:
        env = code_runtime_env({"py_modules": ["gcs://_ray_pkg_1f.zip"], "env_vars": {"OPENAI_API_KEY": key}})
        return procedure_actor_name("m:Drafting", ProcedureOptions(), 0, env) + runtime_env_key(env)

    assert name("sk-one") == name("sk-two")
