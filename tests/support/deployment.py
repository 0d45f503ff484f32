"""A deployment of its own inside the test session's Ray: a Store actor over a fresh SQLite file
and one pool host, in a namespace no other test uses (for tests whose counts another test's
SOPs on a shared host would change)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from sopy_actors.runtime.engine import ActorEngine
from sopy_actors.runtime.host import create_host
from sopy_actors.runtime.options import STORE_ACTOR, RuntimeConfig, create_actor, pool_host, ray_options
from sopy_actors.runtime.store_actor import StoreActor


@dataclass(frozen=True)
class Deployment:
    """The Store actor, the one host and an engine that starts SOPs on it."""

    namespace: str
    location: Path
    store: Any
    host: Any
    engine: ActorEngine


@contextmanager
def own_deployment(directory: Path) -> Iterator[Deployment]:
    """A Store (SQLite in `directory`) and one host in a new namespace; every actor of the
    namespace (the procedure actors the host made too) is killed at the end."""
    namespace = f"own-{uuid.uuid4().hex[:8]}"
    location = directory / "store.sqlite3"
    store = create_actor(StoreActor, ray_options(name=STORE_ACTOR, namespace=namespace), str(location))
    host = create_host(namespace, pool_host(0))
    try:
        yield Deployment(namespace, location, store, host, ActorEngine(RuntimeConfig(namespace=namespace, hosts=1)))
    finally:
        for actor in ray.util.list_named_actors(all_namespaces=True):  # the host's procedure actors too
            if actor["namespace"] == namespace:
                ray.kill(ray.get_actor(actor["name"], namespace=namespace))
