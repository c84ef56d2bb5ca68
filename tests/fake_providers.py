"""A real local HTTP server that answers as Gemini's generateContent and OpenAI's images API
do, for the image-model engines' tests and the bench. The shapes follow the providers' docs;
tests/test_image_models.py checks them against the official SDKs.

    /gemini/v1beta/models/{model}:generateContent    (x-goog-api-key)
    /openai/v1/images/generations | /images/edits    (Bearer key)
    /compat/v1/images/generations | /images/edits    (an OpenAI-compatible server)

Each provider answers from a queue of planned outcomes ("ok" once the queue is empty):
"429" (with Retry-After: 1), "500", "refuse" (the provider's safety refusal), "garbage"
(a 200 whose image is not an image).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

COLOURS = {"gemini": (66, 133, 244), "openai": (16, 163, 127), "compat": (250, 220, 0)}
GEMINI_KEY = "AIzaTEST-gemini-key-0123456789abcdefghij"
OPENAI_KEY = "sk-proj-TEST-openai-key-0123456789abcdef"
COMPAT_KEY = "compat-TEST-key-0123456789"
KEYS = (GEMINI_KEY, OPENAI_KEY, COMPAT_KEY)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Seen:
    """One request the server received."""

    provider: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = 0.0


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    form: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        if part.get_filename():
            files[name] = payload
        else:
            form[name] = payload.decode()
    return form, files


class FakeProviders:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.plans: dict[str, list[str]] = {"gemini": [], "openai": [], "compat": []}
        self.delay_s = 0.0
        self.active = self.peak = 0  # requests being answered now, and the most at once
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def settings(self) -> dict[str, str]:
        """The settings (or a worker's environment) that point all three engines here, with a
        key each."""
        return {
            **self.urls,
            "GEMINI_API_KEY": GEMINI_KEY,
            "OPENAI_API_KEY": OPENAI_KEY,
            "UPSTREAM_API_KEY": COMPAT_KEY,
        }

    @property
    def urls(self) -> dict[str, str]:
        """The settings that point the three engines here."""
        return {
            "GEMINI_BASE_URL": f"{self.base}/gemini/v1beta",
            "OPENAI_BASE_URL": f"{self.base}/openai/v1",
            "UPSTREAM_IMAGES_URL": f"{self.base}/compat/v1",
        }

    def plan(self, provider: str, *outcomes: str) -> None:
        with self._lock:
            self.plans[provider] = list(outcomes)

    def of(self, provider: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.provider == provider]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- answering ------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        provider = request.path.split("/")[1]
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        seen = Seen(provider, request.path, dict(request.headers.items()), at=time.monotonic())
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            seen.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            seen.form, seen.files = _multipart(content_type, body)
        with self._lock:
            self.seen.append(seen)
            queue = self.plans.get(provider, [])
            outcome = queue.pop(0) if queue else "ok"
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay_s)
        with self._lock:
            self.active -= 1
        status, payload, headers = self._answer(provider, outcome, seen)
        raw = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(raw)

    def _answer(
        self, provider: str, outcome: str, seen: Seen
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        image = base64.b64encode(png(COLOURS.get(provider, (0, 0, 0)))).decode()
        if outcome == "garbage":
            image = base64.b64encode(b"this is not an image").decode()
        if outcome == "429":
            error = {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}
            return 429, {"error": error}, {"Retry-After": "1"}
        if outcome == "500":
            return (
                500,
                {"error": {"code": 500, "message": "Internal error.", "status": "INTERNAL"}},
                {},
            )
        if provider == "gemini":
            if outcome == "refuse":
                feedback = {
                    "blockReason": "SAFETY",
                    "blockReasonMessage": "The prompt may violate the safety policy.",
                }
                return 200, {"promptFeedback": feedback}, {}
            if outcome == "refuse-image":
                candidate = {
                    "finishReason": "IMAGE_SAFETY",
                    "finishMessage": "The image may violate the safety policy.",
                    "index": 0,
                }
                return 200, {"candidates": [candidate]}, {}
            parts = [
                {"text": "Here is the image."},
                {"inlineData": {"mimeType": "image/png", "data": image}},
            ]
            candidate = {
                "content": {"role": "model", "parts": parts},
                "finishReason": "STOP",
                "index": 0,
            }
            usage = {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302}
            model = seen.path.rsplit("/", 1)[-1].split(":")[0]
            return (
                200,
                {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model},
                {},
            )
        if outcome == "refuse":
            error = {
                "message": "Your request was rejected by the safety system.",
                "type": "image_generation_user_error",
                "param": None,
                "code": "moderation_blocked",
            }
            return 400, {"error": error}, {}
        return 200, {"created": int(time.time()), "data": [{"b64_json": image}]}, {}
