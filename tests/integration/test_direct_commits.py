"""Hosts on the Store's node write their commits to its SQLite file directly: one hop less,
the same durability (committed before the reply), and a safe way back through the Store actor."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors.runtime.options import STORE_ACTOR
from tests.support import ledger
from tests.support.deployment import own_deployment

pytestmark = pytest.mark.usefixtures("runtime")


def _entry(index: int) -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender="direct", index=index))


def _commits_of(host: Any) -> str:
    """Where the host's commits go, once it has settled (it opens the file as it starts)."""
    deadline = time.monotonic() + 60
    while (where := str(ray.get(host.statistics.remote())["commits"])) != "direct" and time.monotonic() < deadline:
        time.sleep(0.2)
    return where


def test_a_host_on_the_store_node_commits_to_the_file_before_it_replies(runtime: Any) -> None:
    handle = ledger.make_sop(10).start()
    host = ray.get_actor(handle.status().host, namespace=runtime.namespace)
    assert _commits_of(host) == "direct"
    receipt = handle.send(_entry(1))
    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    stored = ray.get(store.load.remote(handle.sop_id))  # another connection to the file
    assert stored is not None and stored.record.version == receipt.version == 1
    assert stored.record.state["data"]["entries"] == {"direct": [1]}
    assert [entry.event_type for entry in stored.recent] == ["EntryAdded"]


def test_a_host_whose_store_file_was_replaced_goes_back_to_the_store_actor(tmp_path: Path) -> None:
    with own_deployment(tmp_path) as deployment:
        assert _commits_of(deployment.host) == "direct"
        (handle,) = deployment.engine.start_many([ledger.make_sop(10)])
        assert handle.send(_entry(1)).version == 1
        location = deployment.location
        os.replace(location, tmp_path / "moved.sqlite3")  # the file the host opened is not at the path now
        location.write_bytes((tmp_path / "moved.sqlite3").read_bytes())
        assert handle.send(_entry(2)).version == 2  # written through the Store actor
        assert ray.get(deployment.host.statistics.remote())["commits"] == "store"
        stored = ray.get(deployment.store.load.remote(handle.sop_id))
        assert stored is not None and stored.record.version == 2
