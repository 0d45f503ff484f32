"""Stopping exactly the Ray processes a test started (never `ray stop`, which stops everyone's)."""

from __future__ import annotations

import contextlib
import os
import re

import psutil


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
