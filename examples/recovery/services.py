"""The summary services the example's agents call: real HTTP servers on 127.0.0.1.

`SummaryService` answers `GET /summarise?text=...` with `{"summary": ...}`. It is told how to
misbehave: answer `503 Service Unavailable` to its first `fail_first` requests, and stop
listening altogether (connections are refused, as from a crashed service) after `die_after`
requests. It runs in a thread of the process that starts it.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SummaryService:
    """One local HTTP summary service.

    Args:
        name: what it calls itself in its summaries.
        fail_first: requests answered with 503 first.
        die_after: requests after which it stops listening (None: never).
    """

    def __init__(self, name: str, *, fail_first: int = 0, die_after: int | None = None) -> None:
        self.name = name
        self.fail_first = fail_first
        self.die_after = die_after
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"service-{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (idempotent): later connections are refused."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _answer(self, text: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            number = self.requests
        if self.die_after is not None and number >= self.die_after:
            threading.Thread(target=self.stop, daemon=True).start()  # answer this one, then die
        if number <= self.fail_first:
            return 503, {"error": f"{self.name} is overloaded (request {number})"}
        words = text.split()
        return 200, {"summary": f"{self.name}: {' '.join(words[:6])}{' ...' if len(words) > 6 else ''}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                status, body = service._answer(query.get("text", [""])[0])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        return Handler
