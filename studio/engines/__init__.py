"""Engines turn an input image (and a template's parameters) into a result.

One module per engine, each with the same small interface:

    run(template, image, params) -> EngineResult

Whether an image-model engine is configured is `providers`' to say; OCR has `ocr.available()`.

`get(name)` returns the module. Engines raise EngineError for a failure that should fail the
job (and refund it), ContentRejected when an image model's provider refused the content;
anything else is treated as an EngineError by the task. The image-model engines (gemini,
openai, upstream) share their plumbing in `providers`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from PIL import Image

ENGINES = ("builtin", "gemini", "openai", "upstream", "ocr")


class EngineError(Exception):
    pass


class EngineUnavailable(EngineError):
    pass


class ContentRejected(EngineError):
    """The model provider refused the request's content (its safety system); refunded."""


@dataclass
class EngineResult:
    image: Image.Image | None = None
    data: dict[str, Any] = field(default_factory=dict[str, Any])


def get(name: str) -> ModuleType:
    if name not in ENGINES:
        raise EngineUnavailable(f"Unknown engine {name!r}")
    return importlib.import_module(f"studio.engines.{name}")
