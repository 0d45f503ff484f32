"""The `sopy-actors` command.

```
sopy-actors graph MODULE:ENTRY [--format prompt|mermaid|json] [--objective TEXT]
sopy-actors check MODULE:ENTRY
sopy-actors run FILE.py[:CALLABLE] | status | attach SOP_ID
```

One module per group of commands, each registering its subparsers with `add_<command>`:
`static` (graph, check: never imports Ray), `runtime` (run, status, attach: imports Ray only
when it runs), over `targets` (what a MODULE:ENTRY or FILE names).

Exit status: 0 success, 1 `check` found errors (or an SOP did not end well), 2 bad usage or a
target that cannot be loaded. Runs in the caller's process.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from sopy_actors.cli.runtime import add_attach, add_run, add_status
from sopy_actors.cli.static import add_check, add_graph
from sopy_actors.cli.targets import TargetError

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
    except TargetError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Draw, check and run SOPs built with sopy_actors."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in (add_graph, add_check, add_run, add_status, add_attach):
        add(commands)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("sopy-actors")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
