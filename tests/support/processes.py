"""Stopping exactly the Ray processes a test started (never `ray stop`, which stops everyone's)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil
import pytest


def stop_processes_of(temp_dir: str) -> None:
    """Kill every process whose command line names `temp_dir` (a Ray node started there)."""
    pattern = re.compile(re.escape(temp_dir) + r"(?![\w-])")
    victims = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid != os.getpid() and pattern.search(" ".join(process.info["cmdline"] or [])):
            victims.append(process)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(victims, timeout=30)


def run_driver(
    command: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a driver process with a private Ray temp dir (`env`'s RAY_TMPDIR, kept for the caller
    to read; else a new one, removed after); on timeout kill its whole process group (its Ray
    processes share it) and fail the test."""
    given = (env or {}).get("RAY_TMPDIR")
    ray_tmpdir = given or tempfile.mkdtemp(prefix="sopy-", dir="/tmp")  # short: Ray's socket paths
    base = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    process = subprocess.Popen(
        command,
        cwd=cwd, env=base | (env or {}) | {"RAY_TMPDIR": ray_tmpdir},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command[-1]} did not finish in {timeout} s:\n{stderr[-3000:]}")
    finally:
        if given is None:
            shutil.rmtree(ray_tmpdir, ignore_errors=True)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
