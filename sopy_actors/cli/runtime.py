"""The `sopy-actors run | status | attach` commands: workflows on a Ray cluster.

```
sopy-actors run FILE.py[:CALLABLE] | FILE.yaml [--param K=V] [--address ADDR] [--namespace NS] [--store-dir DIR]
sopy-actors status [--waiting] [--phase PHASE] [--address ADDR] [--namespace NS]
sopy-actors attach SOP_ID [--address ADDR] [--namespace NS] [--timeout S]
sopy-actors resolve SOP_ID --action retry|skip|fallback|abort|EVENT_JSON [--note TEXT] [--by NAME]
```

`run` imports FILE as a module, ships its directory to the cluster as the runtime_env
working_dir (so every actor can import the workflow's classes), calls CALLABLE (default
`main`) with no arguments and shows the SOPs' progress on stderr while it runs (so the
program's own output on stdout stays whole, line by line); without `--address` it
starts a new local cluster, which stops when the command ends. `status` and `attach` join a
running cluster (`--address auto` by default) and use its Store, wherever it writes; so does
`resolve`, which answers an SOP waiting for a person. Ray is imported only when one of these
commands runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sopy_actors.cli.targets import TargetError, import_file, is_template, load_template, parse_parameters

if TYPE_CHECKING:
    from sopy_actors.runtime.records import SOPSummary

__all__ = ["add_attach", "add_cluster_options", "add_resolve", "add_run", "add_status", "connect"]

_EXCLUDES = [".venv", ".git", "__pycache__", ".mypy_cache", ".pytest_cache", "*.sqlite3", ".sopy"]


def add_cluster_options(parser: argparse.ArgumentParser, default_address: str | None) -> None:
    shown = "a new local cluster" if default_address is None else default_address
    parser.add_argument("--address", default=default_address, help=f"Ray address: auto, HOST:PORT (default: {shown})")
    parser.add_argument("--namespace", default="sopy", help="sopy_actors namespace (default: %(default)s)")
    parser.add_argument(
        "--store-dir",
        default=None,
        help="directory of the Store's SQLite file (default: the running Store's; for a new Store "
        "$SOPY_STORE_DIR, else ~/.sopy_actors/NAMESPACE)",
    )


def add_run(commands: Any) -> None:
    """Register `run`."""
    parser = commands.add_parser("run", help="run a workflow file or workflow template on Ray with live progress")
    parser.add_argument("target", metavar="FILE.py[:CALLABLE]|FILE.yaml")
    parser.add_argument(
        "--param", action="append", metavar="NAME=VALUE", help="a parameter of a workflow template file (repeatable)"
    )
    add_cluster_options(parser, None)
    parser.set_defaults(run=_run)


def add_status(commands: Any) -> None:
    """Register `status`."""
    parser = commands.add_parser("status", help="list the SOPs of a running cluster")
    add_cluster_options(parser, "auto")
    parser.add_argument("--phase", choices=["running", "waiting_for_human", "done", "failed", "cancelled"])
    parser.add_argument(
        "--waiting", action="store_true", help="only SOPs waiting for a person, with the reason and the choices"
    )
    parser.set_defaults(run=_status)


def add_attach(commands: Any) -> None:
    """Register `attach`."""
    parser = commands.add_parser("attach", help="follow one SOP until it finishes")
    parser.add_argument("sop_id")
    add_cluster_options(parser, "auto")
    parser.add_argument("--timeout", type=float, default=None, help="give up after S seconds")
    parser.set_defaults(run=_attach)


def connect(arguments: argparse.Namespace, runtime_env: dict[str, Any] | None = None) -> Any:
    import sopy_actors

    info = sopy_actors.init(
        arguments.address,
        namespace=arguments.namespace,
        store_dir=arguments.store_dir,
        runtime_env=runtime_env,
    )
    metrics = f"http://{info.metrics_host}:{info.metrics_port}/metrics" if info.metrics_port else "off"
    print(f"connected: namespace={info.namespace} nodes={info.nodes} hosts={info.hosts} store={info.store_path}")
    print(f"metrics: port={info.metrics_port or 'off'} {metrics}")
    return info


def _progress_line(summary: SOPSummary) -> str:
    return (
        f"[progress] {summary.name} {summary.sop_id[:12]}: {summary.procedure} v{summary.version} {summary.phase}"
    )


class _Progress:
    """Prints each SOP's procedure, version and phase whenever they change (a polling thread),
    on stderr: a line printed between another thread's text and its newline would break it.

    SOPs already in the store when the run starts (earlier runs in this namespace) are shown
    only if they change while it runs.
    """

    def __init__(self, every: float = 0.5) -> None:
        self._every = every
        self._seen: dict[str, tuple[str, int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sopy-progress", daemon=True)

    def __enter__(self) -> _Progress:
        self.poll(show=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.poll()

    def poll(self, *, show: bool = True) -> None:
        import sopy_actors

        try:
            summaries = sopy_actors.list_sops(limit=200)
        except Exception:
            return
        for summary in reversed(summaries):
            key = (summary.procedure, summary.version, summary.phase)
            if self._seen.get(summary.sop_id) != key:
                self._seen[summary.sop_id] = key
                if show:
                    print(_progress_line(summary), file=sys.stderr, flush=True)


def _run(arguments: argparse.Namespace) -> int:
    """Run FILE.py's CALLABLE, or a workflow template: FILE.yaml with `--param k=v` values.

    A template runs as a workflow SOP started here and driven by its registry's driver
    (`WorkflowRegistry.driver`), or, without one, waited for; its final state is printed as JSON.
    """
    template = is_template(arguments.target)
    file, _, name = (arguments.target, "", "") if template else arguments.target.partition(":")
    path = Path(file)
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    parameters = parse_parameters(arguments.param)
    if parameters and not template:
        raise TargetError("--param applies to workflow template files (FILE.yaml, FILE.yml, FILE.json) only")
    workflow = load_template(file, parameters) if template else None  # invalid templates fail before Ray starts
    connect(arguments, {"working_dir": str(path.resolve().parent), "excludes": _EXCLUDES})
    import sopy_actors

    try:
        started = time.perf_counter()
        if workflow is not None:
            with _Progress():
                final = _run_workflow(workflow)
            print(f"--- final state of {workflow.name}\n{json.dumps(final, indent=2)}")
        else:
            module = import_file(path)
            function: Callable[[], Any] | None = getattr(module, name or "main", None)
            if not callable(function):
                raise TargetError(f"{path} has no callable {name or 'main'!r}")
            with _Progress():
                function()
        print(f"finished in {time.perf_counter() - started:.1f} s")
    finally:
        sopy_actors.shutdown()
    return 0


def _run_workflow(workflow: Any) -> Any:
    """Start a template's workflow, drive it with its registry's driver, return its final state as JSON."""
    from sopy_actors.workflows import WorkflowTemplate

    template: WorkflowTemplate | None = getattr(workflow, "template", None)
    driver = template.registry.driver_function if template is not None else None
    handle = workflow.start()
    print(f"started {workflow.name} as {handle.sop_id}")
    if driver is not None:
        driver(handle, workflow)
    handle.result()
    return handle.state_data()


def _status(arguments: argparse.Namespace) -> int:
    connect(arguments)
    import sopy_actors

    summaries = sopy_actors.list_sops(phase="waiting_for_human" if arguments.waiting else arguments.phase)
    print(f"{'SOP ID':34} {'NAME':24} {'PROCEDURE':24} {'VERSION':>7} PHASE")
    for s in summaries:
        print(f"{s.sop_id:34} {s.name:24} {s.procedure:24} {s.version:>7} {s.phase}")
        if arguments.waiting:
            waiting = sopy_actors.attach(s.sop_id).status().waiting or {}
            print(f"    reason: {waiting.get('reason')}\n    choices: {', '.join(waiting.get('choices', []))}")
    print(f"{len(summaries)} SOPs")
    return 0


def _attach(arguments: argparse.Namespace) -> int:
    connect(arguments)
    import sopy_actors

    handle = sopy_actors.attach(arguments.sop_id)
    shown, told = 0, False
    deadline = None if arguments.timeout is None else time.monotonic() + arguments.timeout
    while True:
        history = handle.history()
        for entry in history[shown:]:
            print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
        shown = len(history)
        status = handle.status()
        if status.phase in ("done", "failed", "cancelled"):
            break
        if status.phase == "waiting_for_human" and not told:
            reason = (status.waiting or {}).get("reason")
            print(f"waiting for a person: {reason} (sopy-actors resolve {status.sop_id} --action ...)")
        told = status.phase == "waiting_for_human"
        if deadline is not None and time.monotonic() > deadline:
            print(f"still {status.phase} in {status.procedure} after {arguments.timeout} s")
            return 1
        time.sleep(0.5)
    if status.phase != "done":
        print(f"{status.phase}: {status.last_prompt or ''}")
        return 1
    # The CLI need not import the workflow's module: print the committed JSON as stored.
    print(json.dumps(handle.state_data(), indent=2))
    return 0


def add_resolve(commands: Any) -> None:
    """Register `resolve`."""
    parser = commands.add_parser("resolve", help="answer an SOP that waits for a person, and resume it")
    parser.add_argument("sop_id")
    parser.add_argument(
        "--action",
        required=True,
        metavar="retry|skip|fallback|abort|EVENT_JSON",
        help='one of the choices the SOP offers, or an event such as \'{"type": "module:Approved", "data": {"payload": "ok"}}\'',
    )
    parser.add_argument("--note", default=None, help="why (kept in the SOP's history)")
    parser.add_argument("--by", default=None, help="who resolves it (default: $USER)")
    add_cluster_options(parser, "auto")
    parser.set_defaults(run=_resolve)


def _resolve(arguments: argparse.Namespace) -> int:
    action: str | dict[str, Any] = arguments.action
    if arguments.action.lstrip().startswith("{"):
        try:
            action = json.loads(arguments.action)
        except json.JSONDecodeError as error:
            raise TargetError(f"--action is not valid JSON: {error}") from None
    by = arguments.by or os.environ.get("USER") or None
    connect(arguments)
    import sopy_actors

    status = sopy_actors.attach(arguments.sop_id).resolve(action, note=arguments.note, by=by)
    print(f"{status.sop_id}: {status.phase} in {status.procedure} (version {status.version})")
    return 0
