"""A real PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` on a free loopback port.

No system service: the server belongs to the test session that started it, listens on
127.0.0.1 only (no Unix socket), and `stop()` ends it. PostgreSQL refuses to run as root, so
as root the server runs as the `postgres` user (the Debian package creates it) or `nobody`.
The superuser has a password (scram-sha-256), so URLs carry one, as a deployment's do.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

USER = "sopy"
PASSWORD = "s3cret-Pw-" + uuid.uuid4().hex[:8]  # a value tests can look for in messages


def postgres_bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    found = [path for path in Path("/usr/lib/postgresql").glob("*/bin/initdb") if path.parts[-3].isdigit()]
    return max(found, key=lambda path: int(path.parts[-3])).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> str | None:
    """The user to run PostgreSQL as when we are root (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


@dataclass
class PostgresServer:
    """A running server; `url()` names a database on it, `stop()` ends it."""

    bin_dir: Path
    directory: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres", *, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        prefix = [] if self.run_as is None else ["runuser", "-u", self.run_as, "--"]
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False, cwd=self.directory
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown, then a kill if it lingers) and delete its files."""
        if self.data.exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # still running: end it by its own pid, nothing else
                with contextlib.suppress(ValueError, OSError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(*, attempts: int = 3) -> PostgresServer:
    """initdb into a new temp dir and start the server on a free 127.0.0.1 port.

    Raises:
        RuntimeError: the binaries are missing or the server did not start (with its log).
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl were not found (Debian: apt-get install postgresql)")
    run_as = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="sopy-pg-", dir="/tmp"))
    server = PostgresServer(bin_dir, directory, 0, run_as)
    try:
        password_file = directory / "pw"
        password_file.write_text(PASSWORD + "\n")
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            for path in (directory, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        done = server._run(
            str(bin_dir / "initdb"), "-D", str(server.data), "-U", USER, f"--pwfile={password_file}",
            "--auth=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync", "--no-instructions",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        password_file.unlink()
        for _ in range(attempts):
            server.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {server.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                "-c shared_buffers=16MB"
            )
            log = directory / "server.log"
            pg_ctl = str(bin_dir / "pg_ctl")
            done = server._run(pg_ctl, "-D", str(server.data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
            if done.returncode == 0:
                _wait_accepting(server.port)
                return server
            time.sleep(0.5)  # the port was taken meanwhile: try another
        text = log.read_text() if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}\n{text[-2000:]}")
    except BaseException:
        server.stop()
        raise


def _wait_accepting(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
