"""Run the `sopy-actors` CLI as a user would, on the test session's own cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`sopy-actors ARGS...` from the repository root; never raises on a failing exit status."""
    command = [sys.executable, "-m", "sopy_actors.cli", *args]
    # An explicit cluster address needs token auth switched on in the client (Ray 2.60).
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    # Ray's raylet prints its own warnings (e.g. about many worker processes) into a driver's
    # stdout, between the lines the command printed: not the command's output.
    stdout = "".join(line for line in done.stdout.splitlines(keepends=True) if "(raylet)" not in line)
    return subprocess.CompletedProcess(done.args, done.returncode, stdout, done.stderr)


def on_cluster(runtime: Any) -> tuple[str, ...]:
    """CLI options joining the session's cluster and deployment by its exact address.

    Not "auto": on a machine running several Ray clusters, "auto" may join another one.
    """
    return ("--address", runtime.address, "--namespace", runtime.namespace, "--store-dir", str(Path(runtime.store_path).parent))


def run_example(runtime: Any, path: str) -> subprocess.CompletedProcess[str]:
    """`sopy-actors run PATH` on the session's cluster; asserts it exited 0."""
    result = run_cli("run", path, *on_cluster(runtime))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_readme_shows_the_graph(example: Path, target: str, check_summary: str) -> None:
    """The example README's mermaid block is what `sopy-actors graph` draws, and `check` passes."""
    drawn = run_cli("graph", target, "--format", "mermaid")
    checked = run_cli("check", target)
    readme = (example / "README.md").read_text()
    match = re.search(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert match is not None, "the example README has no mermaid block"
    assert (drawn.returncode, drawn.stderr) == (0, "")
    assert drawn.stdout == match.group(1)
    assert (checked.returncode, checked.stdout) == (0, check_summary + "\n")
    assert f"```\n{check_summary}\n```" in readme
