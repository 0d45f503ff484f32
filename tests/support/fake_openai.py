"""A tiny OpenAI-compatible chat server (stdlib only) for testing the OpenAI provider offline.

Serves `POST /v1/chat/completions` with `stream: true` as server-sent events, the way strands'
`OpenAIModel` reads them: first a tool call to the first offered tool (with `{"text": <last user
text>}`), then, once the request carries the tool's result, a text answer quoting it; a final
chunk carries the usage. Every request body is kept in `requests` for assertions.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["FakeOpenAI"]


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
    body["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


class FakeOpenAI:
    """Run the server on 127.0.0.1 in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in server.answer(body):
                    self.wfile.write(piece)
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                return  # keep test output clean

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def answer(self, body: dict[str, Any]) -> list[bytes]:
        """The SSE chunks for one request."""
        messages = body["messages"]
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        tool_results = [m for m in messages if m["role"] == "tool"]
        if tool_results:
            text = f"The tool said: {_text(tool_results[-1]['content'])}"
            return [
                _chunk({"role": "assistant", "content": text[:10]}),
                _chunk({"content": text[10:]}),
                _chunk({}, "stop"),
                _chunk(None, usage=usage),
            ]
        user = _text(next(m for m in reversed(messages) if m["role"] == "user")["content"])
        name = body["tools"][0]["function"]["name"]
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
        arguments = json.dumps({"text": user})
        return [
            _chunk({"role": "assistant", "tool_calls": [call]}),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}),
            _chunk({}, "tool_calls"),
            _chunk(None, usage=usage),
        ]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
