"""Typed actor options and names, mapped to Ray's `.options()` in one place."""

from __future__ import annotations

import json
import zlib
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.core.options import ProcedureOptions

__all__ = [
    "ActorOptions",
    "Placement",
    "ProcedureOptions",
    "RuntimeConfig",
    "code_runtime_env",
    "create_actor",
    "host_name",
    "pool_host",
    "procedure_actor_name",
    "ray_options",
    "runtime_env_key",
]

SHARED_PROCEDURE_ACTOR = "sopy-procedures-shared"
STORE_ACTOR = "sopy-store"


class RuntimeConfig(BaseModel):
    """What every process of one sopy_actors deployment agrees on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(default="sopy", min_length=1)
    hosts: int = Field(default=2, ge=1, le=256)


Placement = Literal["spread", "dedicated"]
"""Where an SOP runs: on a pool host chosen by its id, or on a host of its own."""


def pool_host(index: int) -> str:
    """The name of pool host `index`."""
    return f"sopy-host-{index}"


def host_name(sop_id: str, *, pool: int, dedicated: bool) -> str:
    """The SOPHost actor that runs `sop_id`: its own, or one of the pool by a stable hash."""
    if dedicated:
        return f"sopy-host-sop-{sop_id}"
    return pool_host(zlib.crc32(sop_id.encode()) % pool)


def code_runtime_env(runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
    """`runtime_env` without its `env_vars` (None if nothing else is left): the job's code only.

    What the engine keeps of a job's runtime_env: SOP checkpoints store it and actor names
    hash it, so values of environment variables (API keys) must never be in it. Actors the
    engine creates still get the creating process's variables: Ray merges a parent's
    `env_vars` into a child's runtime_env.
    """
    if not runtime_env:
        return None
    code = {key: value for key, value in dict(runtime_env).items() if key != "env_vars"}
    return code or None


def runtime_env_key(runtime_env: dict[str, Any] | None) -> str:
    """A short suffix naming a job's code ("" without a runtime_env) for actors that run it."""
    return "" if not runtime_env else f"@{zlib.crc32(json.dumps(runtime_env, sort_keys=True).encode()):08x}"


def procedure_actor_name(
    class_path: str, options: ProcedureOptions, replica: int, runtime_env: dict[str, Any] | None = None
) -> str:
    """The ProcedureActor serving a procedure class (or the shared one) for one runtime_env.

    The runtime_env (its uploaded packages are named by content hash) is part of the name:
    two jobs shipping different code under the same `module:Class` path must not share an
    actor, and a job shipping changed code gets actors running the new code.
    """
    code = runtime_env_key(runtime_env)
    if options.placement == "shared":
        return SHARED_PROCEDURE_ACTOR + code
    return f"sopy-procedure-{class_path}{code}-{replica}"


class ActorOptions(TypedDict, total=False):
    """Ray's `.options()` of an actor, as sopy actors use them."""

    name: str
    namespace: str
    lifetime: Literal["detached"]
    get_if_exists: bool
    max_restarts: int
    max_task_retries: int
    num_cpus: float
    memory: int
    scheduling_strategy: Any
    resources: dict[str, float]
    max_concurrency: int
    runtime_env: dict[str, Any]


def create_actor(actor_class: object, options: ActorOptions, *args: Any) -> Any:
    """`actor_class.options(**options).remote(*args)`: get or create an actor, typed.

    Ray's stubs type a `@ray.remote` class as the class itself, without `.options`; this is
    the one place that crosses that gap.
    """
    remote: Any = actor_class
    return remote.options(**options).remote(*args)


def ray_options(
    *,
    name: str,
    namespace: str,
    num_cpus: float = 0,
    resources: dict[str, float] | None = None,
    max_concurrency: int | None = None,
    scheduling_strategy: Any = "SPREAD",
    runtime_env: dict[str, Any] | None = None,
) -> ActorOptions:
    """Ray `.options()` for a sopy actor: named, detached, restarted forever, calls retried.

    Calls are retried after a crash because every sopy actor method is idempotent (events are
    deduplicated by id, commits by event id, and a handler run commits nothing by itself).

    An actor that asks for no resource at all asks for one byte of `memory`: Ray places a
    request for nothing on a random node, ignoring SPREAD and a soft node affinity (only a
    hard affinity is honoured, ray-project/ray#25360). The byte holds no CPU, so such actors
    still run on a head started with `--num-cpus=0`.
    """
    options: ActorOptions = {
        "name": name,
        "namespace": namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": -1,
        "num_cpus": num_cpus,
        "scheduling_strategy": scheduling_strategy,
    }
    if resources:
        options["resources"] = dict(resources)
    elif not num_cpus:
        options["memory"] = 1
    if max_concurrency is not None:
        options["max_concurrency"] = max_concurrency
    if runtime_env:
        options["runtime_env"] = runtime_env
    return options
