"""`sopy-actors` ends every failure with one line on stderr and an exit status, never a traceback.

The commands run as a subprocess (`python -m sopy_actors.cli`), each with a private, empty Ray
temp directory and no RAY_ADDRESS, so no cluster of this machine is joined.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def _cli(tmp_path: Path, *arguments: str, **env: str) -> tuple[int, str, str, float]:
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    environment.update(RAY_TMPDIR=str(tmp_path), **env)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sopy_actors.cli", *arguments],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=90, check=False,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def test_status_at_an_address_where_no_cluster_listens_is_a_one_line_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"

    status, out, err, seconds = _cli(tmp_path, "status", "--address", address)

    assert (status, out) == (2, "")
    assert err.startswith(f"sopy-actors: error: no Ray cluster answers at {address}: ")
    assert "`ray start --head`" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert seconds < 30  # Ray alone retries for minutes


def test_attach_with_a_dead_ray_address_in_the_environment_is_a_one_line_error(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"

    status, out, err, _ = _cli(tmp_path, "attach", "some-sop", RAY_ADDRESS=address)

    assert (status, out) == (2, "")
    assert err.startswith(f"sopy-actors: error: no Ray cluster answers at {address} (for 'auto': RAY_ADDRESS")
    assert "Traceback" not in err


def test_status_with_no_cluster_named_anywhere_refuses_to_join_one_found_running(tmp_path: Path) -> None:
    # Ray's "auto" would join any Ray process found on the machine: someone else's cluster.
    status, out, err, _ = _cli(tmp_path, "status")

    assert (status, out) == (2, "")
    assert err.startswith("sopy-actors: error: address 'auto' found no cluster to join: RAY_ADDRESS is not set")
    assert "Traceback" not in err


def test_a_malformed_address_is_a_usage_error(tmp_path: Path) -> None:
    status, _, err, _ = _cli(tmp_path, "status", "--address", "nowhere")

    assert status == 2
    assert err == "sopy-actors: error: Ray address 'nowhere' must be host:port, 'auto' or ray://host:port\n"


def test_traceback_shows_the_error_of_a_failing_command_instead_of_one_line(tmp_path: Path) -> None:
    status, _, err, _ = _cli(tmp_path, "--traceback", "status", "--address", "nowhere")

    assert status == 1  # Python's own exit status for an uncaught exception
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().endswith("sopy_actors.errors.InputError: Ray address 'nowhere' must be host:port, 'auto' or ray://host:port")
