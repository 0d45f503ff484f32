"""Connecting a driver to Ray: the cluster, the Store actor, the SOP hosts, the engine.

`connect(None)` always starts a new local cluster (Ray's `address="local"`): a plain
`ray.init()` would join whatever `RAY_ADDRESS` or the temp directory's last `ray start` names,
and hang for minutes when that cluster is gone. Joining is explicit: "auto" or an address.
A local cluster lives as long as the driver process that started it (Ray starts its processes
with kernel fate-sharing), so a deployment that must outlive its drivers runs on `ray start`.

A cluster over a store with unfinished SOPs (a new cluster on an old store directory) gets
their hosts back when `connect()` runs: each host resends what its SOPs' parents were not told,
and events resent by their senders are recognised by id and applied once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import psutil
import ray
from pydantic import BaseModel, ConfigDict, ValidationError

from sopy_actors.errors import InputError, RuntimeUnavailable, error_from_wire
from sopy_actors.runtime.engine import install, uninstall
from sopy_actors.runtime.host import create_host
from sopy_actors.runtime.instances import MAX_LIVE_KEY, PASSIVATE_AFTER_KEY, Passivation
from sopy_actors.runtime.options import STORE_ACTOR, RuntimeConfig, create_actor, pool_host, ray_options
from sopy_actors.runtime.rayutil import HEAD_RESOURCE, alive_nodes, wait
from sopy_actors.runtime.store import redact_location
from sopy_actors.runtime.store_actor import StoreActor

__all__ = ["RuntimeInfo", "connect", "disconnect", "local_directory", "passivation_settings", "store_location"]

logger = logging.getLogger(__name__)

_START_ATTEMPTS = 5
_START_FAILURES = ("timed out during startup", "Failed to connect to GCS")
_PROBE_SECONDS = 5.0
_started_ray = False


class RuntimeInfo(BaseModel):
    """What `init()` connected to."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    address: str
    store_path: str
    """The Store's SQLite file, or its database URL with the password replaced by `***`."""
    store_dir: str = ""
    """The head node's directory for local files (the Monitor's database, agents' sessions)."""
    hosts: int
    nodes: int
    metrics_port: int | None = None
    """Port of the Monitor's Prometheus `/metrics` on the head node (None: monitoring off)."""
    metrics_host: str | None = None


def _cluster_address(address: str) -> str | None:
    """The host:port a join with `address` goes to (as Ray resolves it), or None if unknown."""
    if address == "auto":
        # Ray's order: RAY_ADDRESS, then the last `ray start` recorded in the temp directory.
        address = os.environ.get("RAY_ADDRESS") or ""
        if not address:
            with contextlib.suppress(Exception):  # a private helper; only a better error is lost
                address = ray._private.utils.read_ray_address(None) or ""
    _, _, address = address.rpartition("://")
    return address if address and address not in ("auto", "local") else None


def _check_reachable(address: str) -> None:
    """Fail fast when nothing listens where `address` points: Ray itself retries for minutes.

    "auto" joins only the cluster named by RAY_ADDRESS or by the last `ray start` on this
    machine, never (as Ray would, as a last resort) any Ray process found running here: on a
    shared machine that is someone else's cluster.

    Raises:
        RuntimeUnavailable: "auto" names no cluster, or the TCP connection to the address was
            refused or timed out.
    """
    target = _cluster_address(address)
    if target is None and address == "auto":
        raise RuntimeUnavailable(
            "address 'auto' found no cluster to join: RAY_ADDRESS is not set and no `ray start` is "
            "recorded on this machine; start one with `ray start --head` or pass the head's address"
        )
    if target is None:
        return
    host, separator, port = target.rpartition(":")
    if not separator or not port.isdigit():
        raise InputError(f"Ray address {address!r} must be host:port, 'auto' or ray://host:port", fields=("address",))
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS).close()
    except OSError as error:
        via = " (for 'auto': RAY_ADDRESS, else the last `ray start` on this machine)" if address == "auto" else ""
        raise RuntimeUnavailable(
            f"no Ray cluster answers at {target}{via}: {error}; start one with `ray start --head` "
            "or give the address of a running head (without an address, init() starts a new local cluster)"
        ) from None


def _connect_ray(**options: Any) -> None:
    """`ray.init`, retried when a new local node fails to come up in time.

    On a slow machine the raylet gives up after 15 s waiting for its dashboard agent to start
    (fixed in Ray 2.60); a second attempt usually wins because the first warmed the page cache.

    Raises:
        RuntimeUnavailable: Ray did not start, or no cluster answers at the address.
    """
    local = options["address"] == "local"
    if not local:
        _check_reachable(options["address"])
    for attempt in range(1, _START_ATTEMPTS + 1):
        try:
            ray.init(**options)
            return
        except Exception as error:
            retry = local and any(f in str(error) for f in _START_FAILURES)
            if not retry or attempt == _START_ATTEMPTS:
                if not local:
                    raise RuntimeUnavailable(f"cannot join the Ray cluster at {options['address']!r}: {error}") from error
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


def _running_store(namespace: str) -> Any | None:
    """The Store actor of `namespace` if the cluster runs one."""
    try:
        return ray.get_actor(STORE_ACTOR, namespace=namespace)
    except ValueError:
        return None


def local_directory(namespace: str, store_dir: str | os.PathLike[str] | None) -> Path:
    """The store directory: `store_dir`, else $SOPY_STORE_DIR, else ~/.sopy_actors/<namespace>."""
    directory = Path(store_dir or os.environ.get("SOPY_STORE_DIR") or Path.home() / ".sopy_actors" / namespace)
    return directory.expanduser().resolve()


def store_location(namespace: str, *, store: str | None, store_dir: str | os.PathLike[str] | None) -> str:
    """Where the Store keeps SOPs: `store`, else $SOPY_STORE_URL, else `store.sqlite3` in the
    store directory (`local_directory`). A SQLite path or `sqlite://` URL becomes an absolute path."""
    chosen = store or os.environ.get("SOPY_STORE_URL") or ""
    scheme, separator, rest = chosen.partition("://")
    if not chosen:
        return str(local_directory(namespace, store_dir) / "store.sqlite3")
    if not separator or scheme == "sqlite":
        return str(Path(rest if separator else chosen).expanduser().resolve())
    return chosen


def _wait_until_gone(namespace: str, timeout: float = 10.0) -> None:
    """Wait until the killed Store's name is free (`ray.kill` returns before the actor is gone)."""
    deadline = time.monotonic() + timeout
    while _running_store(namespace) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def _store_actor(namespace: str, location: str, local_dir: Path | None, *, field: str) -> Any:
    """Get or create the Store actor for `location`.

    Raises:
        InputError: the cluster's Store uses another location.
        RuntimeUnavailable, StateError: the Store cannot open its backend (the message names
            the database's host, never its password).
    """
    # On the head node by its resource, not its node id: a head restarted after a loss (GCS
    # fault tolerance) is a new node, and an affinity to the old id would leave the Store
    # unschedulable for good (and every host waiting for it).
    options = ray_options(name=STORE_ACTOR, namespace=namespace, resources={HEAD_RESOURCE: 0.001})
    store = create_actor(StoreActor, options, location, None if local_dir is None else str(local_dir))
    failure = wait(store.opened.remote(), what="the Store")
    if failure is not None:
        if failure["never_opened"]:  # nobody used it: free the name for a Store that can open
            ray.kill(store)
            _wait_until_gone(namespace)
        raise error_from_wire(failure["error"])
    actual, wanted = wait(store.path.remote(), what="the Store"), redact_location(location)
    if actual != wanted:
        raise InputError(
            f"store {wanted} was asked for, but this cluster's store (namespace "
            f"{namespace!r}) already uses {actual}; pass the same {field} or another namespace",
            fields=(field,),
        )
    return store


def connect(
    address: str | None,
    *,
    namespace: str,
    store_dir: str | os.PathLike[str] | None,
    store: str | None = None,
    hosts: int,
    runtime_env: dict[str, Any] | None,
    num_cpus: int | None,
    include_dashboard: bool,
    log_to_driver: bool,
    passivation: dict[str, str] | None = None,
) -> RuntimeInfo:
    """Connect to Ray, get or create the Store and the host pool, install the engine.

    See `sopy_actors.init` for the arguments (it adds the Monitor on top of this).

    Raises:
        InputError: a bad argument, or a store / store_dir the cluster's store does not use.
        RuntimeUnavailable: Ray did not start or cannot be reached, or the Store's database
            cannot be reached.
        StateError: the store was written by a newer sopy_actors (its schema is newer).
    """
    global _started_ray
    config = RuntimeConfig(namespace=namespace, hosts=hosts)
    if not ray.is_initialized():
        _connect_ray(
            address=address or "local",  # never join a cluster found in the environment
            namespace=namespace,
            runtime_env=runtime_env,
            num_cpus=num_cpus,
            include_dashboard=include_dashboard,
            log_to_driver=log_to_driver,
            configure_logging=False,
        )
        _started_ray = True
    store_actor = _running_store(namespace) if store is None and store_dir is None else None
    if store_actor is None:  # a store or store_dir given must match the running Store's; None takes it as it is
        location = store_location(namespace, store=store, store_dir=store_dir)
        local_dir = local_directory(namespace, store_dir) if "://" in location else None
        store_actor = _store_actor(namespace, location, local_dir, field="store" if store else "store_dir")
    pool = int(wait(store_actor.config.remote("hosts", str(config.hosts)), what="the Store"))
    for key, value in (passivation or {}).items():  # before the hosts start: the first driver's values stay
        wait(store_actor.config.remote(key, value), what="the Store")
    installed = install(config.model_copy(update={"hosts": pool}))
    _start_hosts(namespace, store_actor, pool)
    return RuntimeInfo(
        namespace=namespace,
        address=ray.get_runtime_context().gcs_address,
        store_path=wait(store_actor.path.remote(), what="the Store"),
        store_dir=wait(store_actor.local_directory.remote(), what="the Store"),
        hosts=installed.config.hosts,
        nodes=len(alive_nodes()),
    )


def passivation_settings(passivate_after: float | None, max_live_sops: int | None) -> dict[str, str]:
    """The Store config entries of `init()`'s passivation arguments (those given).

    Raises:
        InputError: a value out of range; the error names the argument.
    """
    given = {"idle_after": passivate_after, "max_live": max_live_sops}
    try:
        settings = Passivation.model_validate({key: value for key, value in given.items() if value is not None})
    except ValidationError as error:
        names = {"idle_after": "passivate_after", "max_live": "max_live_sops"}
        fields = tuple(names[str(problem["loc"][0])] for problem in error.errors())
        raise InputError(f"Invalid {', '.join(fields)}: {error.errors()[0]['msg']}", fields=fields) from None
    entries = {}
    if passivate_after is not None:
        entries[PASSIVATE_AFTER_KEY] = str(settings.idle_after)
    if max_live_sops is not None:
        entries[MAX_LIVE_KEY] = str(settings.max_live)
    return entries


def _start_hosts(namespace: str, store: Any, pool: int) -> None:
    """Get or create the pool hosts and the dedicated hosts of unfinished SOPs.

    On a running cluster they exist already (a second driver). On a new cluster over an old
    store they do not: a host comes back for every SOP still running or whose parent was not
    told of its end, so those SOPs go on (their hosts reload them lazily from the Store and
    tell the untold parents when they start). Dedicated hosts are created first, so the pool
    hosts' first notifications find their parents' hosts.
    """
    pool_names = [pool_host(index) for index in range(pool)]
    unfinished: list[str] = wait(store.unfinished_hosts.remote(), what="the Store")
    resumed = [name for name in unfinished if name not in pool_names]
    for name in [*resumed, *pool_names]:  # get-or-create: a second driver finds them running
        create_host(namespace, name)
    if resumed:
        logger.info("namespace=<%s>, hosts=<%d> | hosts of unfinished SOPs are running", namespace, len(resumed))


def disconnect() -> None:
    """Forget the engine and disconnect; stops Ray too if `connect()` started it."""
    global _started_ray
    uninstall()
    if _started_ray:
        ray.shutdown()
        _started_ray = False
