"""OpenAI's images API: `generations` for a prompt, `edits` for a template on an image.

As documented at platform.openai.com (Bearer key; JSON for generations, multipart for edits;
the picture comes back as `data[0].b64_json`, or as a `url` from servers that prefer one).
The `upstream` engine is this protocol against a self-hosted server.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import TYPE_CHECKING, Any

import requests
from PIL import Image

from studio.engines import ContentRejected, EngineError, EngineResult, EngineUnavailable, providers

if TYPE_CHECKING:
    from studio.models import Template

# Error codes OpenAI answers (400) when its safety system refuses the request.
REFUSALS = frozenset({"moderation_blocked", "content_policy_violation"})
# Template parameters passed through, under the API's names; input_fidelity is for edits only.
GENERATION_OPTIONS = ("size", "quality", "background")
EDIT_OPTIONS = (*GENERATION_OPTIONS, "input_fidelity")


def run(
    template: Template | None, image: Image.Image | None, params: dict[str, Any]
) -> EngineResult:
    return run_on(providers.get("openai"), template, image, params)


def run_on(
    provider: providers.Provider,
    template: Template | None,
    image: Image.Image | None,
    params: dict[str, Any],
) -> EngineResult:
    if not provider.configured:
        raise EngineUnavailable(provider.unavailable_reason())
    model = params.get("model") or provider.default_model.name
    options = {**(template.parameters if template else {}), **params}
    headers = {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
    # Self-hosted servers may default to answering with a URL; gpt-image models refuse the
    # parameter and always answer base64.
    extra = {"response_format": "b64_json"} if provider.name == "upstream" else {}
    if template is None:
        body = {"model": model, "prompt": params["prompt"], "n": 1, **extra}
        body |= {k: options[k] for k in GENERATION_OPTIONS if options.get(k)}
        answer = providers.post(provider, "/images/generations", headers, json=body)
    else:
        assert image is not None  # a template always works on an image (GenerateIn checks)
        form = {"model": model, "prompt": template.prompt, "n": "1", **extra}
        form |= {k: str(options[k]) for k in EDIT_OPTIONS if options.get(k)}
        files = {"image": ("image.png", providers.png(image), "image/png")}
        answer = providers.post(provider, "/images/edits", headers, data=form, files=files)
    picture = read_answer(provider, answer.response)
    data = {"provider": provider.name, "model": model, "provider_attempts": answer.attempts}
    return EngineResult(image=picture, data=data)


def read_answer(provider: providers.Provider, response: requests.Response) -> Image.Image:
    """The image in an images answer; ContentRejected for a safety refusal, EngineError for
    any other error answer or one without a readable image."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = providers.redact(str(error.get("message") or ""))[:300]
        if error.get("code") in REFUSALS:
            raise ContentRejected(f"{provider.label} refused to make this image. {message}".strip())
        if response.status_code in (401, 403):
            raise EngineError(
                f"{provider.label} refused this server's key ({response.status_code})."
            )
        raise EngineError(f"{provider.label} answered {response.status_code}. {message}".strip())
    try:
        item = body["data"][0]
        if item.get("b64_json"):
            raw = base64.b64decode(item["b64_json"], validate=True)
        else:
            download = requests.get(item["url"], timeout=provider.timeout_s)
            download.raise_for_status()
            raw = download.content
        return Image.open(io.BytesIO(raw)).convert("RGB")
    except (
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        binascii.Error,
        OSError,
        requests.RequestException,
    ) as exc:
        raise EngineError(f"{provider.label} returned an answer that is not an image.") from exc
