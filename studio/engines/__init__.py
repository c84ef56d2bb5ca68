"""Engines turn an input image (and a template's parameters) into a result.

One module per engine, each with the same small interface:

    available() -> bool               is it configured and usable here?
    run(template, image, params) -> EngineResult

`get(name)` returns the module. Engines raise EngineError for a failure that should fail the
job (and refund it); anything else is treated the same way by the task.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from PIL import Image

ENGINES = ("builtin", "upstream", "ocr")


class EngineError(Exception):
    pass


class EngineUnavailable(EngineError):
    pass


@dataclass
class EngineResult:
    image: Image.Image | None = None
    data: dict[str, Any] = field(default_factory=dict[str, Any])


def get(name: str) -> ModuleType:
    if name not in ENGINES:
        raise EngineUnavailable(f"Unknown engine {name!r}")
    return importlib.import_module(f"studio.engines.{name}")
