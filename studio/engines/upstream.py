"""A self-hosted image server that speaks OpenAI's images API (generations and edits).

Configured by UPSTREAM_IMAGES_URL (its API base, e.g. http://gpu-box:8080/v1), UPSTREAM_API_KEY
(if it wants one), UPSTREAM_MODELS and UPSTREAM_TIMEOUT_S; see studio.engines.openai.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.engines import EngineResult, openai, providers

if TYPE_CHECKING:
    from PIL import Image

    from studio.models import Template


def run(
    template: Template | None, image: Image.Image | None, params: dict[str, Any]
) -> EngineResult:
    return openai.run_on(providers.get("upstream"), template, image, params)
