"""A real Redis server for tests: Ray's GCS fault tolerance keeps the cluster's metadata in it.

No system service: `start_redis` runs Debian's `redis-server` binary in the foreground as a
child of the test, with a password, no persistence and a private directory; `stop()` kills it
by its pid and deletes the directory. `prefix` runs it elsewhere, e.g. inside a network
namespace (`["ip", "netns", "exec", NAME]`, which execs, so the pid stays the server's).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READY = "Ready to accept connections"


@dataclass
class RedisServer:
    """A running redis-server; `address` is what `RAY_REDIS_ADDRESS` takes."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    password: str
    directory: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def stop(self) -> None:
        """Kill the server (by its pid) and delete its directory."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)


def redis_binary() -> str | None:
    """The `redis-server` binary on PATH (Debian: apt-get install redis-server), or None."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(*, host: str = "127.0.0.1", port: int | None = None, prefix: Sequence[str] = ()) -> RedisServer:
    """Start redis-server listening on `host:port` only (a free loopback port by default).

    Raises:
        RuntimeError: the binary is missing or the server did not come up (with its log).
    """
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("redis-server was not found (Debian: apt-get install redis-server)")
    directory = Path(tempfile.mkdtemp(prefix="sopy-redis-", dir="/tmp"))
    password = secrets.token_hex(16)
    chosen = port or _free_port()
    command = [
        *prefix, binary, "--bind", host, "--port", str(chosen), "--requirepass", password,
        "--save", "", "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "redis.log"),
        "--daemonize", "no", "--protected-mode", "no",
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(process, host, chosen, password, directory)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: RedisServer, timeout: float = 30) -> None:
    """Wait for the server's log to say it accepts connections (works from any namespace)."""
    deadline = time.monotonic() + timeout
    while not (server.log.exists() and READY in server.log.read_text(errors="replace")):
        if server.process.poll() is not None or time.monotonic() > deadline:
            text = server.log.read_text(errors="replace") if server.log.exists() else ""
            raise RuntimeError(f"redis-server did not start (exit {server.process.poll()}): {text[-2000:]}")
        time.sleep(0.05)
