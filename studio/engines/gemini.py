"""Google's Gemini image models ("Nano Banana") through the Gemini API's generateContent.

One request shape for both uses: the template's instruction (or the user's prompt) as a text
part, the image as an inline-data part, `responseModalities: ["IMAGE"]` and the aspect ratio in
`generationConfig.imageConfig`; the picture comes back as an inline-data part. As documented at
ai.google.dev (REST, `x-goog-api-key` header); only GEMINI_BASE_URL differs in the tests.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import TYPE_CHECKING, Any

from PIL import Image

from studio.engines import ContentRejected, EngineError, EngineResult, EngineUnavailable, providers

if TYPE_CHECKING:
    from studio.models import Template

# Why a candidate or a prompt can end without an image because of the provider's rules.
REFUSALS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "JAILBREAK",
    }
)
# Template parameters sent in imageConfig, under the API's names.
IMAGE_CONFIG = {"aspect_ratio": "aspectRatio", "image_size": "imageSize"}


def request_body(prompt: str, image: Image.Image | None, options: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    if image is not None:
        parts.append(
            {
                "inline_data": {
                    "mime_type": "image/png",
                    "data": base64.b64encode(providers.png(image)).decode(),
                }
            }
        )
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    image_config = {IMAGE_CONFIG[k]: v for k, v in options.items() if k in IMAGE_CONFIG and v}
    if image_config:
        config["imageConfig"] = image_config
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def run(
    template: Template | None, image: Image.Image | None, params: dict[str, Any]
) -> EngineResult:
    provider = providers.get("gemini")
    if not provider.configured:
        raise EngineUnavailable(provider.unavailable_reason())
    model = params.get("model") or provider.default_model.name
    options = {**(template.parameters if template else {}), **params}
    prompt = template.prompt if template else params["prompt"]
    answer = providers.post(
        provider,
        f"/models/{model}:generateContent",
        headers={"x-goog-api-key": provider.api_key},
        json=request_body(prompt, image, options),
    )
    picture = read_answer(answer.response)
    data = {"provider": "gemini", "model": model, "provider_attempts": answer.attempts}
    return EngineResult(image=picture, data=data)


def _camel_or_snake(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    return mapping.get(camel, mapping.get(snake))


def read_answer(response: Any) -> Image.Image:
    """The image in a generateContent answer; ContentRejected for a refusal, EngineError for
    an error answer or one without a readable image."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        status = error.get("status") if isinstance(error, dict) else None
        if response.status_code in (401, 403):
            raise EngineError(f"Gemini refused this server's key ({response.status_code}).")
        detail = f" ({status}): {error.get('message', '')}" if status else ""
        raise EngineError(
            providers.redact(f"Gemini answered {response.status_code}{detail}".strip())[:300]
        )
    feedback = _camel_or_snake(body, "promptFeedback", "prompt_feedback") or {}
    blocked = _camel_or_snake(feedback, "blockReason", "block_reason")
    if blocked:
        reason = _camel_or_snake(feedback, "blockReasonMessage", "block_reason_message")
        raise ContentRejected(
            providers.redact(f"Gemini refused the request ({blocked}). {reason or ''}").strip()
        )
    try:
        candidate = body["candidates"][0]
        finish = _camel_or_snake(candidate, "finishReason", "finish_reason")
        parts = (candidate.get("content") or {}).get("parts") or []
        for part in parts:
            inline = _camel_or_snake(part, "inlineData", "inline_data")
            if inline and inline.get("data"):
                raw = base64.b64decode(inline["data"], validate=True)
                return Image.open(io.BytesIO(raw)).convert("RGB")
    except (KeyError, IndexError, TypeError, AttributeError, binascii.Error, OSError) as exc:
        raise EngineError("Gemini returned an answer that is not an image.") from exc
    if finish in REFUSALS:
        message = _camel_or_snake(candidate, "finishMessage", "finish_message") or ""
        raise ContentRejected(
            providers.redact(f"Gemini refused to make this image ({finish}). {message}").strip()
        )
    raise EngineError(f"Gemini returned no image (finish reason {finish or 'none'}).")
