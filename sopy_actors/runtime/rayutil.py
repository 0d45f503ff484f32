"""Ray calls with the framework's errors, and where the cluster's nodes are.

Every blocking `ray.get` of the package goes through `wait`, so a timeout is always a
`TimedOut` (also a `TimeoutError`) and a dead actor a `RuntimeUnavailable`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ray

from sopy_actors.errors import InputError, RuntimeUnavailable, SopyError, TimedOut

__all__ = ["HEAD_RESOURCE", "alive_node_ids", "alive_nodes", "checked_timeout", "head_node_id", "node_for", "wait"]

HEAD_RESOURCE = "node:__internal_head__"
"""The resource Ray gives the head node only: a request for a little of it places an actor on
the head node, whichever node that is (one restarted after a loss has a new node id)."""


def wait(
    ref: Any,
    timeout: float | None = None,
    *,
    what: str = "a sopy actor",
    on_death: Callable[[str], SopyError] = RuntimeUnavailable,
) -> Any:
    """`ray.get(ref, timeout)` with the framework's errors.

    Raises:
        InputError: `timeout` is not None or a finite number of seconds, at least 0.
        TimedOut: no answer within `timeout` seconds (`what` names who did not answer).
        SopyError: the actor died; built by `on_death` from a message (RuntimeUnavailable).
    """
    try:
        return ray.get(ref, timeout=checked_timeout(timeout))
    except ray.exceptions.GetTimeoutError:
        raise TimedOut(f"{what} did not answer within {timeout} s") from None
    except ray.exceptions.RayActorError as error:
        raise on_death(f"{what} is unavailable: {error}") from error


def checked_timeout(timeout: float | None) -> float | None:
    """`timeout` if it is None (no limit) or a finite number of seconds, at least 0.

    Raises:
        InputError: anything else (NaN, infinity, a negative number, not a number).
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout < 0:
        raise InputError(f"timeout must be None or a finite number of seconds >= 0, not {timeout!r}", fields=("timeout",))
    return timeout


def alive_nodes() -> list[dict[str, Any]]:
    """The `ray.nodes()` entries of the cluster's alive nodes (a blocking GCS call)."""
    # ray.nodes is decorated with untyped decorators (@DeveloperAPI, @client_mode_hook),
    # so mypy sees an untyped function; it returns a list of dicts, one a node.
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [node for node in nodes if node.get("Alive")]


def alive_node_ids() -> list[str]:
    """Ids of the cluster's alive nodes, sorted (a stable order for placement)."""
    return sorted(str(node["NodeID"]) for node in alive_nodes())


def head_node_id() -> str:
    """The id of the live head node.

    Raises:
        RuntimeUnavailable: the cluster has no live head node.
    """
    for node in alive_nodes():
        if HEAD_RESOURCE in node.get("Resources", {}):
            return str(node["NodeID"])
    raise RuntimeUnavailable("the Ray cluster has no live head node")


def node_for(host: str) -> str:
    """The node a host actor goes to: pool host i to alive node i (mod their number), others by name.

    Ray's SPREAD is best effort and may put a whole pool on one node; callers make the
    affinity soft, so a host whose node is gone starts (and restarts) elsewhere.
    """
    nodes = alive_node_ids()
    suffix = host.rsplit("-", 1)[-1]
    index = int(suffix) if suffix.isdigit() else sum(host.encode())
    return nodes[index % len(nodes)]
