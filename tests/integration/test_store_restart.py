"""A Store restarted on a head that lost its disk refuses to start an empty SQLite store."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors.errors import StateError, error_from_wire
from sopy_actors.runtime.options import create_actor, ray_options
from sopy_actors.runtime.store_actor import StoreActor
from tests.support.records import record

pytestmark = pytest.mark.usefixtures("runtime")


def _pid(store: Any) -> int:
    pid: int = ray.get(store.__ray_call__.remote(lambda self: os.getpid()))
    return pid


def test_a_restarted_store_whose_sqlite_file_is_gone_says_so_instead_of_starting_empty(runtime: Any, tmp_path: Path) -> None:
    location = tmp_path / "lost" / "store.sqlite3"
    name = f"store-restart-{uuid.uuid4().hex[:8]}"
    store = create_actor(StoreActor, ray_options(name=name, namespace=runtime.namespace), str(location))
    try:
        assert ray.get(store.opened.remote()) is None
        assert ray.get(store.create_many.remote([record("kept")])) == [True]
        pid = _pid(store)
        for path in location.parent.iterdir():  # the disk is lost with the node
            path.unlink()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:  # Ray restarts the actor: wait for the new process
            try:
                if _pid(store) != pid:
                    break
            except ray.exceptions.RayActorError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.5)
        failure = ray.get(store.opened.remote())
        assert failure is not None and not failure["never_opened"]
        error = error_from_wire(failure["error"])
        assert isinstance(error, StateError) and "SQLite file" in str(error) and "is gone" in str(error)
        assert not location.exists()  # nothing was created in its place
    finally:
        ray.kill(store)
