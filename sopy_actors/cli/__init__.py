"""The `sopy-actors` command.

```
sopy-actors graph MODULE:ENTRY|FILE.yaml [--param K=V] [--format prompt|mermaid|json] [--objective TEXT]
sopy-actors check MODULE:ENTRY|FILE.yaml [--param K=V]
sopy-actors run FILE.py[:CALLABLE] | FILE.yaml [--param K=V]
sopy-actors status [--waiting] | attach SOP_ID
sopy-actors resolve SOP_ID --action retry|skip|fallback|abort|EVENT_JSON [--note TEXT]
sopy-actors history SOP_ID | rollback SOP_ID VERSION --reason TEXT | fork SOP_ID VERSION [--sop-id ID]
```

One module per group of commands, each registering its subparsers with `add_<command>`:
`static` (graph, check: never imports Ray), `runtime` (run, status, attach, resolve: imports
Ray only when it runs), `versions` (history, rollback, fork: likewise), over `targets` (what a
MODULE:ENTRY, FILE or template file names).

Exit status: 0 success, 1 `check` found errors (or an SOP did not end well), 2 bad usage, a
target that cannot be loaded, or a cluster that cannot be reached. Errors are one line on
stderr (`sopy-actors: error: ...`), never a traceback; `--traceback` shows one for a bug
report. Runs in the caller's process.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from sopy_actors.cli.runtime import add_attach, add_resolve, add_run, add_status
from sopy_actors.cli.static import add_check, add_graph
from sopy_actors.cli.targets import TargetError
from sopy_actors.cli.versions import add_fork, add_history, add_rollback
from sopy_actors.errors import RecoveryExhausted, SOPFailed, SopyError

__all__ = ["main"]

_PROG = "sopy-actors"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sopy-actors` command line.

    Args:
        argv: the arguments after the program name; `sys.argv[1:]` when None.

    Returns:
        The exit status.
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = arguments.run
    try:
        return command(arguments)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if arguments.traceback:
            raise
        print(f"{_PROG}: error: {_message(error)}", file=sys.stderr)
        return 1 if isinstance(error, SOPFailed | RecoveryExhausted) else 2  # an SOP did not end well


def _message(error: Exception) -> str:
    """One line for the user: our errors and Ray's connection errors say what to do already."""
    if isinstance(error, TargetError | SopyError | ConnectionError):
        return str(error)
    if type(error).__module__.split(".")[0] == "ray":
        return f"Ray: {type(error).__name__}: {error}"
    return f"{type(error).__name__}: {error} (run again with --traceback to see where)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Draw, check and run SOPs built with sopy_actors."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--traceback", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in (add_graph, add_check, add_run, add_status, add_attach, add_resolve, add_history, add_rollback, add_fork):
        add(commands)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("sopy-actors")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
