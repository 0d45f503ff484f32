"""`sopy-actors graph` and `check`: the procedure graph as prompt, Mermaid or JSON; validation.

Targets are hand-written SOPs (`MODULE:ENTRY`), built workflows (`MODULE:FACTORY` returning a
`Workflow`) and workflow template files (`FILE.yaml --param k=v`).

Runs in the caller's process and never imports Ray.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from sopy_actors.cli.targets import load_graph, parse_parameters

__all__ = ["add_check", "add_graph"]


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="MODULE:ENTRY|FILE.yaml",
        help="e.g. examples/guarded_migration/workflow.py:ReadFiles, my.module:sop, a function returning a "
        "Workflow, or a workflow template file (.yaml, .yml, .json)",
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a parameter of a workflow template file (repeatable)",
    )


def add_graph(commands: Any) -> None:
    parser = commands.add_parser(
        "graph", help="print the procedure graph as the SOP prompt, Mermaid or JSON"
    )
    _add_target(parser)
    parser.add_argument(
        "--format", choices=("prompt", "mermaid", "json"), default="prompt", help="default: prompt"
    )
    parser.add_argument(
        "--objective", default="", help="what the SOP is for, in the prompt's header"
    )
    parser.add_argument(
        "--style",
        choices=("default", "sopy"),
        default="default",
        help="prompt layout: this project's (default) or SOPy's generated text",
    )
    parser.set_defaults(run=_graph)


def add_check(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="validate the procedure graph; exit 1 when it has errors"
    )
    _add_target(parser)
    parser.set_defaults(run=_check)


def _graph(arguments: argparse.Namespace) -> int:
    graph = load_graph(arguments.target, parse_parameters(arguments.param))
    if arguments.format == "mermaid":
        print(graph.to_mermaid())
    elif arguments.format == "json":
        print(json.dumps(graph.to_dict(), indent=2))
    else:
        print(graph.to_prompt(arguments.objective, style=arguments.style))
    return 0


def _check(arguments: argparse.Namespace) -> int:
    graph = load_graph(arguments.target, parse_parameters(arguments.param))
    validation = graph.validate()
    for message in validation.errors:
        print(f"error: {message}")
    for message in validation.warnings:
        print(f"warning: {message}")
    if not validation.ok:
        return 1
    procedures = sum(not node.terminal for node in graph.nodes)
    print(f"ok: {procedures} procedures, {len(graph.edges)} transitions")
    return 0
