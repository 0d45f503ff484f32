"""A Ray cluster over a real (virtual) IP network: every node in a Linux network namespace.

```
 bridge <p>br (root namespace, no address: nothing is routed off the machine)
   ├─ <p>-db    10.203.0.2    Redis (Ray's GCS storage) and PostgreSQL (the sopy Store)
   ├─ <p>-head  10.203.0.10   ray start --head  (GCS :6379, dashboard + Jobs API :8265)
   ├─ <p>-w1    10.203.0.11   ray start --address=10.203.0.10:6379  (drivers run here)
   └─ <p>-w2    10.203.0.12   ray start --address=10.203.0.10:6379
```

Each namespace has its own loopback and ports, so Ray's default ports are free in it whatever
else runs on the machine, and its addresses exist only there. Each node has a short private
`RAY_TMPDIR`; all nodes share one token (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`) made here.
A node is "lost" by SIGKILLing the processes in its namespace (`ip netns pids`), never with
`ray stop`, which would stop every Ray process on the machine. `close()` kills what runs in
the namespaces and deletes them, their veths, the bridge and the temp directories.
Needs root (CAP_NET_ADMIN) and iproute2; `netns_unavailable()` says why not.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.postgres import PASSWORD, USER, postgres_bin_dir
from tests.support.redis import RedisServer, start_redis

SUBNET = "10.203.0"
GCS_PORT = 6379
DASHBOARD_PORT = 8265
POSTGRES_PORT = 5432
REDIS_PORT = 6380
RAY = str(Path(sys.executable).with_name("ray"))
# A node is declared dead after 3 failed health checks, one a second, each given 2 s to answer.
# Ray's defaults (3 s, 10 s, 5) take ~15 s for a killed raylet and ~50 s for a cut cable.
SYSTEM_CONFIG = {"health_check_period_ms": 1000, "health_check_timeout_ms": 2000, "health_check_failure_threshold": 3}


def _ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=60, check=check)


def netns_unavailable() -> str | None:
    """Why this machine cannot run the namespace cluster (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    probe = f"sopy-probe-{uuid.uuid4().hex[:8]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


@dataclass
class Namespace:
    """One network namespace on the bridge: `address` on its `eth0`, `veth` its cable's root end."""

    name: str
    veth: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        """Every process running in this namespace."""
        listed = _ip("netns", "pids", self.name, check=False).stdout.split()
        return [int(pid) for pid in listed if pid.isdigit()]

    def kill(self, names: Sequence[str] = ()) -> list[int]:
        """SIGKILL the processes in this namespace (only those named `names`, if given); returns their pids."""
        victims = []
        for pid in self.pids():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if not names or process.name() in names:
                    process.kill()
                    victims.append(process)
        psutil.wait_procs(victims, timeout=30)
        return [process.pid for process in victims]

    def link(self, *, up: bool) -> None:
        """Plug or unplug this namespace's cable (its veth's root end): a network partition."""
        _ip("link", "set", self.veth, "up" if up else "down")


class Network:
    """A bridge and namespaces on it, all named with a fresh prefix; `close()` deletes them."""

    def __init__(self) -> None:
        self.prefix = "s" + secrets.token_hex(3)  # interface names must stay under 16 bytes
        self.bridge = f"{self.prefix}br"
        self.namespaces: list[Namespace] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")

    def add(self, role: str, host: int) -> Namespace:
        """A new namespace `<prefix>-<role>` at 10.203.0.<host>/24, cabled to the bridge."""
        namespace = Namespace(f"{self.prefix}-{role}", f"{self.prefix}{role}", f"{SUBNET}.{host}")
        self.namespaces.append(namespace)
        _ip("netns", "add", namespace.name)
        _ip("link", "add", namespace.veth, "type", "veth", "peer", "name", "eth0", "netns", namespace.name)
        _ip("link", "set", namespace.veth, "master", self.bridge, "up")
        _ip("-n", namespace.name, "addr", "add", f"{namespace.address}/24", "dev", "eth0")
        for device in ("lo", "eth0"):
            _ip("-n", namespace.name, "link", "set", device, "up")
        return namespace

    def close(self) -> None:
        """Kill every process in the namespaces, then delete them, their veths and the bridge."""
        for namespace in self.namespaces:
            namespace.kill()
        for namespace in self.namespaces:
            _ip("link", "delete", namespace.veth, check=False)
            _ip("netns", "delete", namespace.name, check=False)
        _ip("link", "delete", self.bridge, check=False)


@dataclass
class NetworkPostgres:
    """PostgreSQL initdb'd into `directory`, running in a namespace and reached over the bridge."""

    namespace: Namespace
    bin_dir: Path
    directory: Path

    def url(self, database: str = "postgres") -> str:
        """The URL of `database` on this server (with the password)."""
        return f"postgresql://{USER}:{PASSWORD}@{self.namespace.address}:{POSTGRES_PORT}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        createdb = [str(self.bin_dir / "createdb"), "-h", self.namespace.address, "-p", str(POSTGRES_PORT), "-U", USER, name]
        _run_checked(self.namespace.command(createdb), cwd=self.directory, env=os.environ | {"PGPASSWORD": PASSWORD})
        return self.url(name)

    def stop(self) -> None:
        """Kill the server (by the pids of its processes) and delete its files."""
        self.namespace.kill(["postgres"])
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres_in(namespace: Namespace) -> NetworkPostgres:
    """initdb into a temp dir and start PostgreSQL in `namespace`, listening on its address.

    Like `tests.support.postgres.start_postgres` (same user and password), but reachable from
    the other namespaces: it listens on the namespace's address and lets the subnet in.

    Raises:
        RuntimeError: the binaries are missing or the server did not start (with its log).
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl were not found (Debian: apt-get install postgresql)")
    user = next(name for name in ("postgres", "nobody") if _user_exists(name))  # it refuses to run as root
    server = NetworkPostgres(namespace, bin_dir, Path(tempfile.mkdtemp(prefix="sopy-pg-", dir="/tmp")))
    try:
        directory, data = server.directory, server.directory / "data"
        entry = pwd.getpwnam(user)
        (directory / "pw").write_text(PASSWORD + "\n")
        for path in (directory, directory / "pw"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
        _run_checked([
            *as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={directory / 'pw'}",
            "--auth=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync", "--no-instructions",
        ], cwd=directory)
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 scram-sha-256\n")
        options = (
            f"-c listen_addresses={namespace.address} -p {POSTGRES_PORT} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=16MB"
        )
        log = directory / "server.log"
        start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"]
        _run_checked(namespace.command([*as_user, *start]), cwd=directory, log=log)
    except BaseException:
        server.stop()
        raise
    return server


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run_checked(command: list[str], *, cwd: Path, log: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=env)
    if done.returncode != 0:
        text = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{Path(command[0]).name} failed: {done.stdout}{done.stderr}\n{text}")


@dataclass
class RayNode:
    """A Ray node (head or worker) started with `ray start` inside its namespace.

    Each start gets a new `temp_dir` (RAY_TMPDIR), as a replacement machine or pod would have.
    """

    role: str
    namespace: Namespace
    head: bool
    temp_dir: Path
    """The RAY_TMPDIR of the node's latest start."""
    starts: int = 0

    def raylet_running(self) -> bool:
        """True while the node's raylet process is alive."""
        return any(_name_of(pid) == "raylet" for pid in self.namespace.pids())


def _name_of(pid: int) -> str:
    try:
        return str(psutil.Process(pid).name())
    except psutil.Error:
        return ""


class NetnsCluster:
    """PostgreSQL + Redis in `db`, a GCS-fault-tolerant head and two workers, each in its namespace.

    The head runs with `RAY_REDIS_ADDRESS` (its GCS state lives in Redis, so a new head started
    in its place takes the cluster over) and `SOPY_STORE_URL` (database `sopy`), as a
    deployment's head would: drivers started there (`ray job submit`) use that Store.
    Use as a context manager (`with NetnsCluster() as cluster:`): the cluster is up inside the
    block and everything is gone after it, whatever happened.
    """

    def __init__(self) -> None:
        self.token = secrets.token_hex(32)
        self.redis: RedisServer | None = None
        self.postgres: NetworkPostgres | None = None
        self.store_url = ""
        self.network = Network()
        self.temp_root = Path(tempfile.mkdtemp(prefix=f"{self.network.prefix}-", dir="/tmp"))
        try:
            self.db = self.network.add("db", 2)
            self.head = self._node("head", 10, head=True)
            self.workers = [self._node(f"w{index}", 10 + index, head=False) for index in (1, 2)]
        except BaseException:
            self.close()
            raise

    def _node(self, role: str, host: int, *, head: bool) -> RayNode:
        return RayNode(role, self.network.add(role, host), head, self.temp_root / role)

    def __enter__(self) -> NetnsCluster:
        try:
            self.redis = start_redis(host=self.db.address, port=REDIS_PORT, prefix=self.db.command([]))
            self.postgres = start_postgres_in(self.db)
            self.store_url = self.new_database("sopy")
            self.start_node(self.head)
            with ThreadPoolExecutor(len(self.workers)) as starting:
                list(starting.map(self.start_node, self.workers))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The GCS address drivers and workers join (host:port)."""
        return f"{self.head.namespace.address}:{GCS_PORT}"

    @property
    def dashboard(self) -> str:
        """The Jobs API / dashboard URL."""
        return f"http://{self.head.namespace.address}:{DASHBOARD_PORT}"

    def new_database(self, name: str) -> str:
        """A new database on the cluster's PostgreSQL, for one deployment's Store; returns its URL."""
        assert self.postgres is not None
        return self.postgres.create_database(name)

    def env(self, node: RayNode) -> dict[str, str]:
        """The environment of Ray processes (nodes, drivers, `ray job`) on `node`."""
        base = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        return base | {
            "RAY_TMPDIR": str(node.temp_dir),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def start_node(self, node: RayNode) -> float:
        """`ray start` the node in its namespace; returns the seconds it took.

        Raises:
            RuntimeError: `ray start` failed (with its output).
        """
        node.temp_dir = self.temp_root / f"{node.role}-{node.starts}"
        node.temp_dir.mkdir()
        address = node.namespace.address
        common = [f"--node-ip-address={address}", "--disable-usage-stats", f"--temp-dir={node.temp_dir}"]
        if node.head:
            assert self.redis is not None
            env = self.env(node) | {"RAY_REDIS_ADDRESS": self.redis.address, "SOPY_STORE_URL": self.store_url}
            role = [
                "--head", f"--port={GCS_PORT}", "--num-cpus=1", f"--redis-password={self.redis.password}",
                f"--dashboard-host={address}", f"--dashboard-port={DASHBOARD_PORT}",
                f"--system-config={json.dumps(SYSTEM_CONFIG)}",
            ]
        else:
            env, role = self.env(node), [f"--address={self.address}", "--num-cpus=2"]
        started = time.monotonic()
        done = subprocess.run(
            node.namespace.command([RAY, "start", *role, *common]),
            env=env, capture_output=True, text=True, timeout=180, check=False, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ray start in {node.namespace.name} failed: {done.stdout[-3000:]}{done.stderr[-3000:]}")
        node.starts += 1
        return time.monotonic() - started

    def kill_node(self, node: RayNode) -> list[int]:
        """SIGKILL every process of the node (a machine lost); returns their pids."""
        return node.namespace.kill()

    def kill_raylet(self, node: RayNode) -> list[int]:
        """SIGKILL the node's raylet only (its workers find out by themselves)."""
        return node.namespace.kill(["raylet"])

    def ensure_workers(self) -> None:
        """Start again every worker node whose raylet is gone (after a loss or a partition)."""
        for worker in self.workers:
            if not worker.raylet_running():
                worker.namespace.kill()  # leftovers of the lost node
                worker.namespace.link(up=True)
                self.start_node(worker)

    def run(self, node: RayNode, argv: Sequence[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run `argv` to its end in the node's namespace with its Ray environment."""
        return subprocess.run(
            node.namespace.command(argv), cwd=cwd, env=self.env(node), capture_output=True, text=True,
            timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )

    def popen(self, node: RayNode, argv: Sequence[str], *, cwd: Path) -> subprocess.Popen[str]:
        """Start `argv` in the node's namespace with its Ray environment, pipes on stdin/stdout/stderr."""
        return subprocess.Popen(
            node.namespace.command(argv), cwd=cwd, env=self.env(node), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def close(self) -> None:
        """Stop every process, delete every namespace, veth, the bridge and the temp directories."""
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
        self.network.close()
        shutil.rmtree(self.temp_root, ignore_errors=True)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM (what CI timeouts send) raises KeyboardInterrupt, so that the
    `with` blocks inside it clean up; the previous handler comes back after it. Main thread only."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def killed_on_exit(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Yield `process`; kill it (by pid) on the way out if it still runs."""
    try:
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
