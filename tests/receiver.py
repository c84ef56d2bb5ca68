"""A real HTTP receiver for webhook tests: records each request and answers as planned."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers each request with the next planned status (200 once the plan is used up);
    "hang" sleeps `hang_s` before answering; a (status, {header: value}) pair sets headers."""

    def __init__(self, *plan: Any, hang_s: float = 15) -> None:
        self.received: list[Received] = []
        self.plan = list(plan)
        self.hang_s = hang_s
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    owner.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    step = owner.plan.pop(0) if owner.plan else 200
                if step == "hang":
                    time.sleep(owner.hang_s)
                    step = 200
                status, headers = step if isinstance(step, tuple) else (step, {})
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, seconds: float = 30) -> list[Received]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
