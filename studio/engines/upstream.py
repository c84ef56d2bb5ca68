"""The upstream engine: an OpenAI-compatible image model over HTTP.

Templates no local engine can do (the `expressions` type) go to its images *edits* endpoint,
prompt-only requests to its images *generations* endpoint. Configured by UPSTREAM_IMAGES_URL
(the API base, e.g. https://api.example.com/v1), UPSTREAM_API_KEY, UPSTREAM_MODEL and
UPSTREAM_TIMEOUT_S; without a URL it is unavailable and its templates are listed as such.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from PIL import Image

if TYPE_CHECKING:
    from studio.models import Template

from studio.engines import EngineError, EngineResult, EngineUnavailable


def available() -> bool:
    return bool(settings.UPSTREAM_IMAGES_URL)


def _post(path: str, **kwargs: Any) -> Image.Image:
    if not available():
        raise EngineUnavailable("No upstream image model is configured")
    headers = {"Authorization": f"Bearer {settings.UPSTREAM_API_KEY}"}
    url = settings.UPSTREAM_IMAGES_URL.rstrip("/") + path
    try:
        response = requests.post(
            url, headers=headers, timeout=settings.UPSTREAM_TIMEOUT_S, **kwargs
        )
    except requests.RequestException as exc:
        raise EngineError(f"Upstream model unreachable: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise EngineError(f"Upstream model answered {response.status_code}")
    try:
        item = response.json()["data"][0]
        if "b64_json" in item:
            raw = base64.b64decode(item["b64_json"])
        else:
            raw = requests.get(item["url"], timeout=settings.UPSTREAM_TIMEOUT_S).content
        return Image.open(io.BytesIO(raw)).convert("RGB")
    except (KeyError, IndexError, ValueError, OSError, requests.RequestException) as exc:
        raise EngineError("Upstream model returned an unreadable image") from exc


def run(
    template: Template | None, image: Image.Image | None, params: dict[str, Any]
) -> EngineResult:
    model = params.get("model") or settings.UPSTREAM_MODEL
    if template is None:  # prompt-only text-to-image
        payload = {
            "model": model,
            "prompt": params["prompt"],
            "n": 1,
            "size": params.get("size") or "1024x1024",
            "response_format": "b64_json",
        }
        return EngineResult(image=_post("/images/generations", json=payload))
    assert image is not None  # a template always works on an image (GenerateIn checks)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    files = {"image": ("image.png", buffer.getvalue(), "image/png")}
    data = {
        "model": model,
        "prompt": template.parameters.get("prompt", template.name),
        "n": "1",
        "response_format": "b64_json",
    }
    return EngineResult(image=_post("/images/edits", files=files, data=data))
