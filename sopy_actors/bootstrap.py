"""`sopy_actors.init()` and `shutdown()`: the runtime, then the Monitor above it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sopy_actors.monitoring.api import start_monitor
from sopy_actors.runtime.connect import RuntimeInfo, connect, disconnect, passivation_settings
from sopy_actors.runtime.main_module import ship_main_module

__all__ = ["init", "shutdown"]

logger = logging.getLogger(__name__)


def init(
    address: str | None = None,
    *,
    namespace: str = "sopy",
    store_dir: str | os.PathLike[str] | None = None,
    store: str | None = None,
    hosts: int = 2,
    runtime_env: dict[str, Any] | None = None,
    num_cpus: int | None = None,
    include_dashboard: bool = False,
    log_to_driver: bool = True,
    monitoring: bool = True,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    passivate_after: float | None = None,
    max_live_sops: int | None = None,
) -> RuntimeInfo:
    """Connect to Ray (a new local cluster when `address` is None) and the system actors.

    A new local cluster lives as long as this process: Ray stops it when the driver exits
    (or is killed), detached actors included. SOPs outlive it in the store directory: a later
    `init()` with the same `store_dir` (on a new cluster) brings back the hosts of unfinished
    SOPs, and they go on where their last commit left them.

    Args:
        address: None for a new local cluster, always (never one named by RAY_ADDRESS or
            found in Ray's temp directory); "auto", "host:port" or "ray://host:port" to join
            a running cluster.
        namespace: the Ray namespace; SOPs of one deployment share it.
        store_dir: the head node's directory for local files: the Store's SQLite file
            (unless `store` names a database) and the Monitor's. Default: the running
            Store's when the cluster has one in `namespace`, else $SOPY_STORE_DIR, else
            ~/.sopy_actors/<namespace>.
        store: where the Store keeps SOPs, if not in SQLite in `store_dir`: a database URL,
            `postgresql://user:password@host:port/database` (needs `sopy-actors[postgres]`;
            any node can reach it, the head can be lost), or a SQLite file path. Default:
            the running Store's, else $SOPY_STORE_URL, else SQLite in the store directory.
            The password is never logged nor shown (`RuntimeInfo.store_path` has `***`).
        hosts: size of the SOPHost pool (fixed by the first driver of a namespace).
        runtime_env: Ray runtime_env for user code (working_dir / py_modules). Its
            `env_vars` reach this job's workers but are never stored in checkpoints or in
            actor names: give API keys to a cluster through its nodes' environment.
        num_cpus: CPUs of a new local cluster.
        include_dashboard: start Ray's dashboard with a new local cluster.
        log_to_driver: show actor logs in this process.
        monitoring: start (or join) the Monitor: metrics, HealthChecks, the Prometheus endpoint.
        metrics_port: the Monitor's `/metrics` port: None = the running Monitor's, or 9464 for
            a new one (any free port if 9464 is taken); 0 = any free port. A Monitor restarted
            after a crash binds its port again.
        metrics_host: the address `/metrics` binds to on the head node (first driver decides).
        passivate_after: seconds after which a host drops an idle SOP from memory (it reloads
            from the Store when next used); default 300. Fixed by the first driver of a
            namespace, like `hosts`.
        max_live_sops: idle SOPs a host keeps in memory at most (default 100,000); same rule.

    Raises:
        InputError: a bad argument, a store or store_dir the cluster's store does not use, or
            a metrics_port the running Monitor does not use (or that is taken).
        RuntimeUnavailable: Ray did not start or cannot be reached, or the store's database
            cannot be reached (the message names its host, never the password).
        StateError: the store was written by a newer sopy_actors (a newer schema version).
    """
    passivation = passivation_settings(passivate_after, max_live_sops)  # bad values: refused before Ray starts
    info = connect(
        address,
        namespace=namespace,
        store_dir=store_dir,
        store=store,
        hosts=hosts,
        runtime_env=ship_main_module(runtime_env),
        num_cpus=num_cpus,
        include_dashboard=include_dashboard,
        log_to_driver=log_to_driver,
        passivation=passivation,
    )
    if monitoring:
        db_path = str(Path(info.store_dir) / "monitor.sqlite3")
        endpoint = start_monitor(namespace, db_path=db_path, port=metrics_port, host=metrics_host)
        info = info.model_copy(update={"metrics_port": endpoint.port, "metrics_host": endpoint.host})
    logger.info(
        "namespace=<%s>, store=<%s>, hosts=<%d>, metrics=<%s> | sopy_actors ready",
        namespace, info.store_path, info.hosts, info.metrics_port or "off",
    )
    return info


def shutdown() -> None:
    """Forget the engine and disconnect; stops Ray too if `init()` started it.

    Detached sopy actors (hosts, store, procedure actors, the Monitor) live on in a cluster
    you joined.
    """
    disconnect()
