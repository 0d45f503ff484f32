"""The engine behind `SOP.start()`: starts and attaches SOPs on SOPHost actors, by name.

One `ActorEngine` per process: a driver installs it in `connect()`, a ProcedureActor in its
constructor (so handlers can start sub-SOPs). It reaches hosts by their names only; the pool
hosts are created by `connect()`, a dedicated host by a pool host (`SOPHostActor.create_host`).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import ray

from sopy_actors.core.codec import encode_procedure, encode_state
from sopy_actors.core.context import handling_sop_id
from sopy_actors.core.sop import SOP, set_engine
from sopy_actors.errors import InputError, RuntimeUnavailable, StateError, UnknownSOP, error_from_wire
from sopy_actors.runtime.blobs import StoreBlobs
from sopy_actors.runtime.handle import SOPHandle, check_sop_id
from sopy_actors.runtime.options import STORE_ACTOR, Placement, RuntimeConfig, code_runtime_env, host_name
from sopy_actors.runtime.rayutil import wait
from sopy_actors.runtime.store import SOPRecord, SOPSummary
from sopy_actors.state.lazy import collect_sections, store_sections, use_blob_store
from sopy_actors.telemetry.reporter import MONITOR_ACTOR

__all__ = ["ActorEngine", "attach", "current_engine", "install", "install_worker_engine", "list_sops"]

logger = logging.getLogger(__name__)

_PLACEMENTS = ("spread", "dedicated")


class ActorEngine:
    """Starts SOPs on SOPHost actors; installed as the engine behind `SOP.start()`.

    Args:
        config: what every process of the deployment agrees on.
        job_runtime_env: the runtime_env of the job whose code runs here (see `job_runtime_env`).
    """

    def __init__(self, config: RuntimeConfig, *, job_runtime_env: dict[str, Any] | None = None) -> None:
        self.config = config
        self._job_runtime_env = job_runtime_env

    def job_runtime_env(self) -> dict[str, Any] | None:
        """The runtime_env of the job whose code runs here (its workflow and tool modules).

        In a driver, the job's own. In a ProcedureActor, the one its SOPs were started with:
        the actor's own runtime_env also holds what Ray merged in from the host that created it,
        so it would name actors (procedure classes, agents) differently from the driver.

        Never with `env_vars` (see `code_runtime_env`): this runtime_env is checkpointed with
        every SOP, hashed into actor names and given to the actors the engine creates, and
        environment variables are where users put API keys.
        """
        if self._job_runtime_env is not None:
            return code_runtime_env(self._job_runtime_env)
        return code_runtime_env(ray.get_runtime_context().runtime_env)

    def start(self, sop: SOP[Any], *, sop_id: str | None, placement: Placement) -> SOPHandle:
        """Create the SOP on its host (its first checkpoint is durable when this returns).

        Raises:
            InputError: a bad `sop_id` or `placement`, or an id that is taken.
        """
        if placement not in _PLACEMENTS:
            raise InputError(f"placement must be 'spread' or 'dedicated', not {placement!r}", fields=("placement",))
        sop_id = check_sop_id(sop_id or uuid.uuid4().hex)
        pool_host = host_name(sop_id, pool=self.config.hosts, dedicated=False)
        host = host_name(sop_id, pool=self.config.hosts, dedicated=placement == "dedicated")
        monitor = self._monitor_for(sop)
        with collect_sections() as sections:  # lazy sections travel as stubs, stored apart
            state = encode_state(sop.state)
        record = SOPRecord(
            sop_id=sop_id,
            name=sop.name,
            host=host,
            start_token=uuid.uuid4().hex,
            parent_id=handling_sop_id(),
            procedure=encode_procedure(sop.init_proc),
            state=state,
            retry_limits=sop.retry_limits,
            semantics=sop.semantics,
            filters={"observed": list(sop.filters.observed), "agents": list(sop.filters.agents)},
            runtime_env=self.job_runtime_env(),
            recovery=None if sop.recovery is None else sop.recovery.model_dump(mode="json"),
        )
        size, limit = len(json.dumps(record.state)), int(record.procedure["options"]["max_state_bytes"])
        if size > limit:
            raise StateError(
                f"sop=<{sop_id}> | the initial state is {size} bytes as JSON, over max_state_bytes={limit} "
                f"of {sop.init_proc.sop_name}: keep large data out of the state, or raise max_state_bytes"
            )
        store_sections(sections)  # durable before the first checkpoint names them
        if host != pool_host:
            wait(self.host(pool_host).create_host.remote(host), what=f"SOP host {pool_host}")
        refused = wait(self.host(host).start.remote(record), what=f"SOP host {host}")
        if refused is not None:
            raise error_from_wire(refused)
        if monitor is not None:
            wait(monitor.subscribe.remote(sop_id, host, sop.name, sop.health_every, sop.memory_budget), what="the Monitor")
        logger.info("sop=<%s>, host=<%s>, parent=<%s> | started", sop_id, host, record.parent_id)
        return SOPHandle(sop_id, host=host, namespace=self.config.namespace)

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
        """The SOPHost actor of that name.

        Raises:
            RuntimeUnavailable: no such host is running (was `init()` called on this cluster?).
        """
        try:
            return ray.get_actor(name, namespace=self.config.namespace)
        except ValueError as error:
            raise RuntimeUnavailable(
                f"SOP host {name} is not running in namespace {self.config.namespace!r}: {error}"
            ) from None

    def store(self) -> Any:
        """The Store actor."""
        return ray.get_actor(STORE_ACTOR, namespace=self.config.namespace)

    def attach(self, sop_id: str) -> SOPHandle:
        """The handle of a live or stored SOP; creates its host if the cluster lacks it.

        Raises:
            UnknownSOP: no SOP with that id was ever started in this namespace.
        """
        stored = wait(self.store().load.remote(sop_id, 0), what="the Store")
        if stored is None:
            raise UnknownSOP(sop_id)
        self._ensure_host(stored.record.host)
        return SOPHandle(sop_id, host=stored.record.host, namespace=self.config.namespace)

    def _ensure_host(self, name: str) -> None:
        """Get or create host `name`.

        On a new cluster over an old store, `init()` brings back the hosts of unfinished SOPs
        only: an ended SOP's dedicated host comes back when someone attaches to that SOP.
        """
        try:
            ray.get_actor(name, namespace=self.config.namespace)
        except ValueError:
            pool = host_name(name, pool=self.config.hosts, dedicated=False)
            wait(self.host(pool).create_host.remote(name), what=f"SOP host {pool}")
            logger.info("host=<%s> | created for attach()", name)


_engine: ActorEngine | None = None


def install(config: RuntimeConfig, *, job_runtime_env: dict[str, Any] | None = None) -> ActorEngine:
    """Make a new engine this process's engine (and the one behind `SOP.start()`)."""
    global _engine
    _engine = ActorEngine(config, job_runtime_env=job_runtime_env)
    set_engine(_engine)
    use_blob_store(StoreBlobs(config.namespace))  # lazy state sections read or written here
    return _engine


def uninstall() -> None:
    """Forget this process's engine."""
    global _engine
    _engine = None
    set_engine(None)
    use_blob_store(None)


def current_engine() -> ActorEngine:
    """The engine of this process.

    Raises:
        RuntimeUnavailable: `init()` has not run here.
    """
    if _engine is None:
        raise RuntimeUnavailable("sopy_actors.init() has not been called in this process")
    return _engine


def install_worker_engine(namespace: str, job_runtime_env: dict[str, Any] | None = None) -> None:
    """Give a Ray worker (a ProcedureActor) the engine, so handlers can start sub-SOPs.

    Args:
        namespace: the deployment's namespace.
        job_runtime_env: the runtime_env of the job whose SOPs this worker serves.
    """
    if _engine is not None and _engine.config.namespace == namespace:
        return
    store = ray.get_actor(STORE_ACTOR, namespace=namespace)
    pool = int(wait(store.config.remote("hosts", "2"), what="the Store"))
    install(RuntimeConfig(namespace=namespace, hosts=pool), job_runtime_env=job_runtime_env)


def attach(sop_id: str) -> SOPHandle:
    """The handle of a live or stored SOP, from any driver connected with `init()`.

    Raises:
        UnknownSOP: no SOP with that id was ever started in this namespace.
        RuntimeUnavailable: `init()` has not run here.
    """
    return current_engine().attach(sop_id)


def list_sops(phase: str | None = None, *, limit: int = 1000) -> list[SOPSummary]:
    """Summaries of the SOPs in this namespace, newest first (optionally of one phase)."""
    summaries: list[SOPSummary] = wait(current_engine().store().list_sops.remote(phase, limit), what="the Store")
    return summaries
