"""Connecting to Ray, the system actors, and starting/attaching SOPs on SOPHost actors."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import psutil
import ray
from pydantic import BaseModel, ConfigDict
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.core.codec import encode_procedure, encode_state
from sopy_actors.core.sop import SOP, set_engine
from sopy_actors.errors import InputError, RuntimeUnavailable, UnknownSOP
from sopy_actors.monitoring.reporter import MONITOR_ACTOR
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.host import SOPHostActor
from sopy_actors.runtime.options import STORE_ACTOR, RuntimeConfig, host_name, ray_options
from sopy_actors.runtime.procedure_actor import calling_sop
from sopy_actors.runtime.store import SOPRecord
from sopy_actors.runtime.store_actor import StoreActor

__all__ = ["RuntimeInfo", "attach", "init", "install_worker_engine", "list_sops", "shutdown"]

logger = logging.getLogger(__name__)

_SOP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HOST_CONCURRENCY = 100_000  # every waiting send()/result() holds one slot of an async actor
_NODES_TTL_SECONDS = 10.0  # how long the list of alive nodes that hosts are placed on is reused
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


def _head_node_id() -> str:
    for node in ray.nodes():
        if node.get("Alive") and "node:__internal_head__" in node.get("Resources", {}):
            return str(node["NodeID"])
    raise RuntimeUnavailable("the Ray cluster has no live head node")


def _store_actor(namespace: str, path: str) -> Any:
    options = ray_options(
        name=STORE_ACTOR,
        namespace=namespace,
        scheduling_strategy=NodeAffinitySchedulingStrategy(_head_node_id(), soft=False),
    )
    store = StoreActor.options(**options).remote(path)
    actual = ray.get(store.path.remote())
    if actual != path:
        raise InputError(
            f"store_dir asks for {path}, but this cluster's store (namespace "
            f"{namespace!r}) already uses {actual}; pass the same store_dir or another namespace",
            fields=("store_dir",),
        )
    return store


class ActorEngine:
    """Starts SOPs on SOPHost actors; installed as the engine behind `SOP.start()`."""

    def __init__(self, config: RuntimeConfig, job_runtime_env: dict[str, Any] | None = None) -> None:
        self.config = config
        self._job_runtime_env = job_runtime_env
        self._nodes: list[str] = []
        self._nodes_read = 0.0

    def job_runtime_env(self) -> dict[str, Any] | None:
        """The runtime_env of the job whose code runs here (its workflow and tool modules).

        In a driver, the job's own. In a ProcedureActor, the one its SOPs were started with:
        the actor's own runtime_env also holds what Ray merged in from the host that created it,
        so it would name actors (procedure classes, agents) differently from the driver.
        """
        if self._job_runtime_env is not None:
            return self._job_runtime_env
        return ray.get_runtime_context().runtime_env or None

    def start(self, sop: SOP[Any], *, sop_id: str | None, placement: str) -> SOPHandle:
        """Create the SOP on its host (its first checkpoint is durable when this returns)."""
        if placement not in ("spread", "dedicated"):
            raise InputError(f"placement must be 'spread' or 'dedicated', not {placement!r}", fields=("placement",))
        sop_id = sop_id or uuid.uuid4().hex
        if not isinstance(sop_id, str) or not _SOP_ID.match(sop_id):
            raise InputError(
                f"sop_id {sop_id!r} must be 1-128 characters of letters, digits and ._:-", fields=("sop_id",)
            )
        host = host_name(sop_id, pool=self.config.hosts, dedicated=placement == "dedicated")
        monitor = self._monitor_for(sop)
        record = SOPRecord(
            sop_id=sop_id,
            name=sop.name,
            host=host,
            start_token=uuid.uuid4().hex,
            parent_id=calling_sop.get(),
            procedure=encode_procedure(sop.init_proc),
            state=encode_state(sop.state),
            retry_limits=sop.retry_limits,
            filters={"observed": list(sop.filters.observed), "agents": list(sop.filters.agents)},
            runtime_env=self.job_runtime_env(),
        )
        ray.get(self.host(host).start.remote(record))
        if monitor is not None:
            ray.get(monitor.subscribe.remote(sop_id, host, sop.name, sop.health_every, sop.memory_budget))
        logger.info("sop=<%s>, host=<%s>, parent=<%s> | started", sop_id, host, record.parent_id)
        return SOPHandle(sop_id, host, self.config.namespace)

    def _monitor_for(self, sop: SOP[Any]) -> Any:
        """The Monitor actor if `sop` asked for HealthChecks (`SOP.monitored`), else None."""
        if sop.health_every is None:
            return None
        try:
            return ray.get_actor(MONITOR_ACTOR, namespace=self.config.namespace)
        except ValueError:
            raise RuntimeUnavailable(
                f"SOP {sop.name} asks for HealthChecks, but namespace {self.config.namespace!r} runs "
                "no Monitor: call init() with monitoring=True (the default)"
            ) from None

    def host(self, name: str) -> Any:
        """The SOPHost actor of that name, created on first use on its node (see `_node_for`)."""
        options = ray_options(
            name=name,
            namespace=self.config.namespace,
            max_concurrency=_HOST_CONCURRENCY,
            scheduling_strategy=NodeAffinitySchedulingStrategy(self._node_for(name), soft=True),
        )
        return SOPHostActor.options(**options).remote(self.config.namespace, name)

    def _node_for(self, host: str) -> str:
        """Pool host i goes to alive node i (mod their number); a dedicated host by its name's hash.

        Ray's SPREAD is best effort and may put a whole pool on one node; the affinity is soft,
        so a host whose node is gone starts (and restarts) elsewhere.
        """
        now = time.monotonic()
        if now - self._nodes_read > _NODES_TTL_SECONDS or not self._nodes:
            self._nodes = sorted(node["NodeID"] for node in ray.nodes() if node.get("Alive"))
            self._nodes_read = now
        suffix = host.rsplit("-", 1)[-1]
        index = int(suffix) if suffix.isdigit() else zlib.crc32(host.encode())
        return self._nodes[index % len(self._nodes)]

    def store(self) -> Any:
        """The Store actor."""
        return ray.get_actor(STORE_ACTOR, namespace=self.config.namespace)


_engine: ActorEngine | None = None


def _install(config: RuntimeConfig, job_runtime_env: dict[str, Any] | None = None) -> ActorEngine:
    global _engine
    _engine = ActorEngine(config, job_runtime_env)
    set_engine(_engine)
    return _engine


def current_engine() -> ActorEngine:
    """The engine of this process.

    Raises:
        RuntimeUnavailable: `init()` has not run here.
    """
    if _engine is None:
        raise RuntimeUnavailable("sopy_actors.init() has not been called in this process")
    return _engine


_START_ATTEMPTS = 5
_START_FAILURES = ("timed out during startup", "Failed to connect to GCS")


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


def init(
    address: str | None = None,
    *,
    namespace: str = "sopy",
    store_dir: str | os.PathLike[str] | None = None,
    hosts: int = 2,
    runtime_env: dict[str, Any] | None = None,
    num_cpus: int | None = None,
    include_dashboard: bool = False,
    log_to_driver: bool = True,
    monitoring: bool = True,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> RuntimeInfo:
    """Connect to Ray (a new local cluster when `address` is None) and the system actors.

    Args:
        address: None for a new local cluster; "auto" or "ray://host:port" to join one.
        namespace: the Ray namespace; SOPs of one deployment share it.
        store_dir: where the Store keeps its SQLite file (on the head node). Default:
            $SOPY_STORE_DIR, else ~/.sopy_actors/<namespace>.
        hosts: size of the SOPHost pool (fixed by the first driver of a namespace).
        runtime_env: Ray runtime_env for user code (working_dir / py_modules).
        num_cpus: CPUs of a new local cluster.
        include_dashboard: start Ray's dashboard with a new local cluster.
        log_to_driver: show actor logs in this process.
        monitoring: start (or join) the Monitor: metrics, HealthChecks, the Prometheus endpoint.
        metrics_port: the Monitor's `/metrics` port: None = the running Monitor's, or 9464 for
            a new one (any free port if 9464 is taken); 0 = any free port. A Monitor restarted
            after a crash binds its port again.
        metrics_host: the address `/metrics` binds to on the head node (first driver decides).

    Raises:
        InputError: a bad argument, a store_dir the cluster's store does not use, or a
            metrics_port the running Monitor does not use (or that is taken).
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
    pool = int(ray.get(store.config.remote("hosts", str(config.hosts))))
    engine = _install(config.model_copy(update={"hosts": pool}))
    store_path = ray.get(store.path.remote())
    endpoint = None
    if monitoring:
        # The monitoring layer sits above the runtime (it uses ray_options and SOPHandle).
        from sopy_actors.monitoring.api import start_monitor

        db_path = str(Path(store_path).parent / "monitor.sqlite3")
        endpoint = start_monitor(namespace, db_path=db_path, port=metrics_port, host=metrics_host)
    info = RuntimeInfo(
        namespace=namespace,
        address=ray.get_runtime_context().gcs_address,
        store_path=store_path,
        hosts=engine.config.hosts,
        nodes=sum(1 for n in ray.nodes() if n.get("Alive")),
        metrics_port=endpoint.port if endpoint else None,
        metrics_host=endpoint.host if endpoint else None,
    )
    logger.info(
        "namespace=<%s>, store=<%s>, hosts=<%d>, metrics=<%s> | sopy_actors ready",
        namespace, info.store_path, info.hosts, endpoint.url if endpoint else "off",
    )
    return info


def install_worker_engine(namespace: str, job_runtime_env: dict[str, Any] | None = None) -> None:
    """Give a Ray worker (a ProcedureActor) the engine, so handlers can start sub-SOPs.

    Args:
        namespace: the deployment's namespace.
        job_runtime_env: the runtime_env of the job whose SOPs this worker serves.
    """
    if _engine is not None and _engine.config.namespace == namespace:
        return
    store = ray.get_actor(STORE_ACTOR, namespace=namespace)
    pool = int(ray.get(store.config.remote("hosts", "2")))
    _install(RuntimeConfig(namespace=namespace, hosts=pool), job_runtime_env)


def current_sop() -> SOPHandle | None:
    """The handle of the SOP whose handler is running here (in a ProcedureActor), else None.

    A handler uses it to have results addressed to its own SOP, e.g.
    `agent.submit(prompt, deliver_to=sopy_actors.current_sop())`.
    """
    sop_id = calling_sop.get()
    return None if sop_id is None else attach(sop_id)


def attach(sop_id: str) -> SOPHandle:
    """The handle of a live or stored SOP, from any driver connected with `init()`.

    Raises:
        UnknownSOP: no SOP with that id was ever started in this namespace.
    """
    engine = current_engine()
    stored = ray.get(engine.store().load.remote(sop_id, 0))
    if stored is None:
        raise UnknownSOP(sop_id)
    return SOPHandle(sop_id, stored.record.host, engine.config.namespace)


def list_sops(phase: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Summaries of the SOPs in this namespace (id, name, phase, procedure, version), newest first."""
    return list(ray.get(current_engine().store().list_sops.remote(phase, limit)))


def shutdown() -> None:
    """Forget the engine and disconnect; stops Ray too if `init()` started it.

    Detached sopy actors (hosts, store, procedure actors) live on in a cluster you joined.
    """
    global _engine, _started_ray
    _engine = None
    set_engine(None)
    if _started_ray:
        ray.shutdown()
        _started_ray = False

