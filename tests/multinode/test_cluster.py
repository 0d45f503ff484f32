"""Multi-node: a real 3-node Ray cluster (ray.cluster_utils) in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.multinode

ROOT = Path(__file__).resolve().parents[2]


def test_actors_spread_over_nodes_and_removing_a_worker_node_loses_no_sop() -> None:
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="mn-", dir="/tmp")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.multinode.cluster_run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{")))
    if "skipped" in report:
        pytest.skip(report["skipped"])
    assert report["placement_nodes"] > 1, report
    assert report["removed_node_had_actors"] >= 1
    assert report["completed"] == report["sops"]
