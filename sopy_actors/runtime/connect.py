"""Connecting a driver to Ray: the cluster, the Store actor, the SOP host pool, the engine."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import psutil
import ray
from pydantic import BaseModel, ConfigDict
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.errors import InputError, RuntimeUnavailable
from sopy_actors.runtime.engine import install, uninstall
from sopy_actors.runtime.host import create_host
from sopy_actors.runtime.options import STORE_ACTOR, RuntimeConfig, create_actor, pool_host, ray_options
from sopy_actors.runtime.rayutil import alive_nodes, head_node_id, wait
from sopy_actors.runtime.store_actor import StoreActor

__all__ = ["RuntimeInfo", "connect", "disconnect"]

logger = logging.getLogger(__name__)

_START_ATTEMPTS = 5
_START_FAILURES = ("timed out during startup", "Failed to connect to GCS")
_started_ray = False


class RuntimeInfo(BaseModel):
    """What `init()` connected to."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    address: str
    store_path: str
    hosts: int
    nodes: int
    metrics_port: int | None = None
    """Port of the Monitor's Prometheus `/metrics` on the head node (None: monitoring off)."""
    metrics_host: str | None = None


def _connect_ray(**options: Any) -> None:
    """`ray.init`, retried when a new local node fails to come up in time.

    On a slow machine the raylet gives up after 15 s waiting for its dashboard agent to start
    (fixed in Ray 2.60); a second attempt usually wins because the first warmed the page cache.
    """
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            ray.init(**options)
            return
        except Exception as error:
            retry = options.get("address") is None and any(f in str(error) for f in _START_FAILURES)
            if not retry or attempt == _START_ATTEMPTS:
                raise RuntimeUnavailable(f"Ray did not start: {error}") from error
            logger.warning("attempt=<%d> | local Ray node did not start in time; retrying", attempt)
            _kill_partial_node()
            time.sleep(5)  # let the killed processes exit before the next start competes with them


def _kill_partial_node() -> None:
    """Stop the processes a failed local start left behind (they would slow the next try)."""
    ray.shutdown()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "ray" in " ".join(child.cmdline()):
                child.kill()


def _store_actor(namespace: str, path: str) -> Any:
    options = ray_options(
        name=STORE_ACTOR,
        namespace=namespace,
        scheduling_strategy=NodeAffinitySchedulingStrategy(head_node_id(), soft=False),
    )
    store = create_actor(StoreActor, options, path)
    actual = wait(store.path.remote(), what="the Store")
    if actual != path:
        raise InputError(
            f"store_dir asks for {path}, but this cluster's store (namespace "
            f"{namespace!r}) already uses {actual}; pass the same store_dir or another namespace",
            fields=("store_dir",),
        )
    return store


def connect(
    address: str | None,
    *,
    namespace: str,
    store_dir: str | os.PathLike[str] | None,
    hosts: int,
    runtime_env: dict[str, Any] | None,
    num_cpus: int | None,
    include_dashboard: bool,
    log_to_driver: bool,
) -> RuntimeInfo:
    """Connect to Ray, get or create the Store and the host pool, install the engine.

    See `sopy_actors.init` for the arguments (it adds the Monitor on top of this).

    Raises:
        InputError: a bad argument, or a store_dir the cluster's store does not use.
        RuntimeUnavailable: Ray did not start or cannot be reached.
    """
    global _started_ray
    config = RuntimeConfig(namespace=namespace, hosts=hosts)
    if not ray.is_initialized():
        _connect_ray(
            address=address,
            namespace=namespace,
            runtime_env=runtime_env,
            num_cpus=num_cpus,
            include_dashboard=include_dashboard,
            log_to_driver=log_to_driver,
            configure_logging=False,
        )
        _started_ray = True
    directory = Path(store_dir or os.environ.get("SOPY_STORE_DIR") or Path.home() / ".sopy_actors" / namespace)
    store = _store_actor(namespace, str(directory.expanduser().resolve() / "store.sqlite3"))
    pool = int(wait(store.config.remote("hosts", str(config.hosts)), what="the Store"))
    installed = install(config.model_copy(update={"hosts": pool}))
    for index in range(pool):  # get-or-create: a second driver finds them running
        create_host(namespace, pool_host(index))
    return RuntimeInfo(
        namespace=namespace,
        address=ray.get_runtime_context().gcs_address,
        store_path=wait(store.path.remote(), what="the Store"),
        hosts=installed.config.hosts,
        nodes=len(alive_nodes()),
    )


def disconnect() -> None:
    """Forget the engine and disconnect; stops Ray too if `connect()` started it."""
    global _started_ray
    uninstall()
    if _started_ray:
        ray.shutdown()
        _started_ray = False
