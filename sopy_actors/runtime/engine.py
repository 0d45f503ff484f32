"""The engine behind `SOP.start()`: starts and attaches SOPs on SOPHost actors, by name.

One `ActorEngine` per process: a driver installs it in `connect()`, a ProcedureActor in its
constructor (so handlers can start sub-SOPs). It reaches hosts by their names only; the pool
hosts are created by `connect()`, a dedicated host by a pool host (`SOPHostActor.create_host`).
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import ray

from sopy_actors.core.codec import encode_procedure, encode_state
from sopy_actors.core.context import handling_sop_id
from sopy_actors.core.sop import SOP, set_engine
from sopy_actors.errors import InputError, RuntimeUnavailable, StateError, UnknownSOP, error_from_wire
from sopy_actors.runtime.blobs import StoreBlobs
from sopy_actors.runtime.handle import SOPHandle, check_sop_id
from sopy_actors.runtime.options import STORE_ACTOR, Placement, RuntimeConfig, code_runtime_env, host_name, runtime_env_key
from sopy_actors.runtime.rayutil import wait
from sopy_actors.runtime.records import SOPRecord, SOPSummary
from sopy_actors.runtime.sending import forget_hosts
from sopy_actors.state.lazy import collect_sections, store_sections, use_blob_store
from sopy_actors.telemetry.reporter import MONITOR_ACTOR

__all__ = ["ActorEngine", "attach", "current_engine", "install", "install_worker_engine", "list_sops", "start_many"]

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
        self._code: tuple[dict[str, Any] | None, str] | None = None  # job_runtime_env() and its key

    def job_runtime_env(self) -> dict[str, Any] | None:
        """The runtime_env of the job whose code runs here (its workflow and tool modules).

        In a driver, the job's own. In a ProcedureActor, the one its SOPs were started with:
        the actor's own runtime_env also holds what Ray merged in from the host that created it,
        so it would name actors (procedure classes, agents) differently from the driver.

        Never with `env_vars` (see `code_runtime_env`): this runtime_env is checkpointed with
        every SOP, hashed into actor names and given to the actors the engine creates, and
        environment variables are where users put API keys.
        """
        return copy.deepcopy(self._job_code()[0])

    def job_code_key(self) -> str:
        """`runtime_env_key` of `job_runtime_env()`: the suffix of the actors that run this job's code."""
        return self._job_code()[1]

    def _job_code(self) -> tuple[dict[str, Any] | None, str]:
        # A process's runtime_env does not change: read (and hash) it once.
        if self._code is None:
            given = self._job_runtime_env
            code = code_runtime_env(given if given is not None else ray.get_runtime_context().runtime_env)
            self._code = (code, runtime_env_key(code))
        return self._code

    def start(self, sop: SOP[Any], *, sop_id: str | None, placement: Placement) -> SOPHandle:
        """Create the SOP on its host (its first checkpoint is durable when this returns).

        Raises:
            InputError: a bad `sop_id` or `placement`, or an id that is taken.
        """
        return self.start_many([sop], sop_ids=[sop_id], placement=placement)[0]

    def start_many(
        self, sops: Sequence[SOP[Any]], *, sop_ids: Sequence[str | None] | None = None, placement: Placement = "spread"
    ) -> list[SOPHandle]:
        """Create several SOPs with one call per host; each host writes the first checkpoints
        that arrive together in one Store transaction. Durable when this returns.

        Raises:
            InputError: a bad id or placement, ids repeated or not one per SOP (nothing was
                started); or ids taken (raised after every host answered: the other SOPs
                were started, attach to them).
        """
        if placement not in _PLACEMENTS:
            raise InputError(f"placement must be 'spread' or 'dedicated', not {placement!r}", fields=("placement",))
        wanted = list(sop_ids) if sop_ids is not None else [None] * len(sops)
        if len(wanted) != len(sops):
            raise InputError(f"sop_ids has {len(wanted)} ids for {len(sops)} SOPs", fields=("sop_ids",))
        ids = [check_sop_id(sop_id or uuid.uuid4().hex) for sop_id in wanted]
        if len(set(ids)) != len(ids):
            raise InputError("sop_ids repeats an id", fields=("sop_ids",))
        monitors = [self._monitor_for(sop) for sop in sops]
        sections: dict[str, bytes] = {}
        records = [self._first_record(sop, sop_id, placement, sections) for sop, sop_id in zip(sops, ids, strict=True)]
        store_sections(sections)  # durable before the first checkpoints name them
        by_host: dict[str, list[SOPRecord]] = {}
        for record in records:
            by_host.setdefault(record.host, []).append(record)
        for host in by_host:
            pool_host = host_name(by_host[host][0].sop_id, pool=self.config.hosts, dedicated=False)
            if host != pool_host:
                wait(self.host(pool_host).create_host.remote(host), what=f"SOP host {pool_host}")
        calls = {host: self.host(host).start_batch.remote(batch) for host, batch in by_host.items()}
        refused = [error for host, call in calls.items() for error in wait(call, what=f"SOP host {host}") if error]
        for sop, record, monitor in zip(sops, records, monitors, strict=True):
            if monitor is not None:
                subscribed = monitor.subscribe.remote(record.sop_id, record.host, sop.name, sop.health_every, sop.memory_budget)
                wait(subscribed, what="the Monitor")
        if refused:
            raise error_from_wire(refused[0])
        for record in records:
            logger.info("sop=<%s>, host=<%s>, parent=<%s> | started", record.sop_id, record.host, record.parent_id)
        return [SOPHandle(record.sop_id, host=record.host, namespace=self.config.namespace) for record in records]

    def _first_record(self, sop: SOP[Any], sop_id: str, placement: Placement, sections: dict[str, bytes]) -> SOPRecord:
        """The SOP's first checkpoint; its changed lazy sections are added to `sections`.

        Raises:
            StateError: the state has no JSON form, or is over `max_state_bytes`.
        """
        with collect_sections() as collected:  # lazy sections travel as stubs, stored apart
            state = encode_state(sop.state)
        record = SOPRecord(
            sop_id=sop_id,
            name=sop.name,
            host=host_name(sop_id, pool=self.config.hosts, dedicated=placement == "dedicated"),
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
        sections.update(collected)
        return record

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


_forgetters: list[Callable[[], None]] = []


def on_uninstall(forget: Callable[[], None]) -> None:
    """Have `forget` called when the engine is uninstalled: what a module remembers of the
    cluster (actor handles, replies) is no good in the next session."""
    _forgetters.append(forget)


def uninstall() -> None:
    """Forget this process's engine, and the actor handles remembered with it."""
    global _engine
    _engine = None
    set_engine(None)
    use_blob_store(None)
    forget_hosts()
    for forget in _forgetters:
        forget()


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


def start_many(
    sops: Sequence[SOP[Any]], *, sop_ids: Sequence[str | None] | None = None, placement: Placement = "spread"
) -> list[SOPHandle]:
    """Start several SOPs at once: one call per host, one Store transaction per host batch.

    Args:
        sops: the SOPs to start.
        sop_ids: an id per SOP (None: a new one); default all new.
        placement: as `SOP.start()`, for all of them.

    Raises:
        InputError: see `ActorEngine.start_many`.
        RuntimeUnavailable: `init()` has not run here.
    """
    return current_engine().start_many(sops, sop_ids=sop_ids, placement=placement)


def list_sops(phase: str | None = None, *, limit: int = 1000) -> list[SOPSummary]:
    """Summaries of the SOPs in this namespace, newest first (optionally of one phase)."""
    summaries: list[SOPSummary] = wait(current_engine().store().list_sops.remote(phase, limit), what="the Store")
    return summaries
