"""The `sopy-actors history | rollback | fork` commands: an SOP's versions (time travel).

```
sopy-actors history SOP_ID [--address ADDR] [--namespace NS]
sopy-actors rollback SOP_ID VERSION --reason TEXT [--address ADDR] [--namespace NS]
sopy-actors fork SOP_ID VERSION [--sop-id ID] [--address ADDR] [--namespace NS]
```

They join a running cluster (`--address auto` by default) like `status`, and read its Store.
`history` lists the stored versions (version, time, event, procedure, size, description);
`rollback` makes a new version equal to an old one (audited, with the reason); `fork` starts
a new SOP from a version. Ray is imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sopy_actors.cli.runtime import add_cluster_options, connect

__all__ = ["add_fork", "add_history", "add_rollback"]


def add_history(commands: Any) -> None:
    """Register `history`."""
    parser = commands.add_parser("history", help="list an SOP's stored versions")
    parser.add_argument("sop_id")
    add_cluster_options(parser, "auto")
    parser.set_defaults(run=_history)


def add_rollback(commands: Any) -> None:
    """Register `rollback`."""
    parser = commands.add_parser("rollback", help="make a new version of an SOP equal to an old one")
    parser.add_argument("sop_id")
    parser.add_argument("version", type=int)
    parser.add_argument("--reason", required=True, help="why (kept in the SOP's history)")
    add_cluster_options(parser, "auto")
    parser.set_defaults(run=_rollback)


def add_fork(commands: Any) -> None:
    """Register `fork`."""
    parser = commands.add_parser("fork", help="start a new SOP from a version of another")
    parser.add_argument("sop_id")
    parser.add_argument("version", type=int)
    parser.add_argument("--sop-id", dest="new_id", default=None, help="the new SOP's id (default: a new uuid)")
    add_cluster_options(parser, "auto")
    parser.set_defaults(run=_fork)


def _history(arguments: argparse.Namespace) -> int:
    connect(arguments)
    import sopy_actors

    versions = sopy_actors.attach(arguments.sop_id).versions()
    print(f"{arguments.sop_id}: {len(versions)} versions")
    print(f"{'VERSION':>7}  {'TIME':19}  {'EVENT':20}  {'PROCEDURE':20}  {'BYTES':>6}  DESCRIPTION")
    for info in versions:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.at))
        print(f"{info.version:>7}  {when:19}  {info.event:20}  {info.procedure:20}  {info.size:>6}  {info.description}")
    return 0


def _rollback(arguments: argparse.Namespace) -> int:
    connect(arguments)
    import sopy_actors

    handle = sopy_actors.attach(arguments.sop_id)
    version = handle.rollback(arguments.version, reason=arguments.reason)
    print(f"{arguments.sop_id}: rolled back to version {arguments.version} as version {version}")
    return 0


def _fork(arguments: argparse.Namespace) -> int:
    connect(arguments)
    import sopy_actors

    fork = sopy_actors.attach(arguments.sop_id).fork(arguments.version, sop_id=arguments.new_id)
    print(f"{fork.sop_id}: forked from {arguments.sop_id} at version {arguments.version}")
    return 0
