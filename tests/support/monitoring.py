"""Helpers for monitoring tests: scraping, a loopback HTTP dependency, a real Prometheus server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")


def scrape(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(
        v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)
    )


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, every: float = 0.25, what: str = "") -> T:
    """Poll `check` until it returns something truthy; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as error:  # the endpoint may be restarting
            last = error
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}: last {last!r}")


def settled(read: Callable[[], T], *, every: float = 1.5, timeout: float = 90.0) -> T:
    """`read()` once three readings `every` s apart agree (reporters flush every second, and
    a loaded 2-core machine can delay a flush)."""
    readings = [read()]

    def stable() -> bool:
        readings.append(read())
        return len(readings) >= 3 and readings[-1] == readings[-2] == readings[-3]

    wait_for(stable, timeout=timeout, every=every, what="settled metrics")
    return readings[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Health(BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:
        self.send_response(200 if type(self).healthy else 503)
        self.end_headers()
        self.wfile.write(b"ok" if type(self).healthy else b"down")

    def log_message(self, *args: Any) -> None:
        return


@contextmanager
def loopback_dependency() -> Iterator[tuple[str, type[_Health]]]:
    """An HTTP health endpoint on 127.0.0.1; set `.healthy = False` on the yielded class to fail it."""
    handler = type("DependencyHandler", (_Health,), {"healthy": True})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/health", handler
    finally:
        server.shutdown()
        server.server_close()


class PrometheusServer:
    """A real Prometheus on loopback scraping `targets` every second, storage in `directory`."""

    def __init__(self, directory: Path, targets: list[str]) -> None:
        self.port = free_port()
        config = directory / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: sopy\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(directory / "prometheus.log").open("w"),
        )
        wait_for(self._ready, timeout=60, what="Prometheus to start")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}")
        try:
            return "Ready" in scrape(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = json.loads(scrape(url))
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, check=False)


def have_prometheus() -> bool:
    return PROMETHEUS.exists() and PROMTOOL.exists() and shutil.which(str(PROMTOOL)) is not None
