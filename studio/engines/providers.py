"""Image-model providers: which are configured, the models they offer, and the HTTP calls to
them (retries, a concurrency cap shared by all workers, keys kept out of every message).

Three providers, each an engine module of its own: `gemini` (Google's Gemini API, the
"Nano Banana" models), `openai` (OpenAI's images API) and `upstream` (a self-hosted server
that speaks OpenAI's images API). A template's engine is one of them, or `auto`: the server's
default provider (IMAGE_PROVIDER, else the first configured), which prompt-only requests use too.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from studio.engines import EngineError

logger = logging.getLogger("nanostudio.jobs")

AUTO = "auto"
ORDER = ("gemini", "openai", "upstream")  # the default provider is the first configured
MAX_ATTEMPTS = 3
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 20.0
RETRY_AFTER_CAP_S = 60.0
SLOT_POLL_S = 0.2

# Names people know the models by; a model not listed here is shown by its id.
MODEL_LABELS = {
    "gemini-2.5-flash-image": "Nano Banana (Gemini 2.5 Flash Image)",
    "gemini-3-pro-image-preview": "Nano Banana Pro (Gemini 3 Pro Image)",
    "gpt-image-1": "GPT Image 1",
    "gpt-image-1-mini": "GPT Image 1 mini",
}
# What each provider accepts for the picture's shape. Gemini takes an aspect ratio; the OpenAI
# images API takes a size, so an aspect ratio is sent as the size of that shape.
GEMINI_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
GPT_IMAGE_SIZES = {"1:1": "1024x1024", "2:3": "1024x1536", "3:2": "1536x1024"}
SIZES = ("1024x1024", "1024x1536", "1536x1024", "512x512", "256x256")  # what the API takes


@dataclass(frozen=True)
class ImageModel:
    name: str
    provider: str
    credit_cost: int
    default: bool

    @property
    def label(self) -> str:
        return MODEL_LABELS.get(self.name, self.name)


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    base_url: str
    api_key: str
    needs: str  # what configures it, for "unavailable" messages
    timeout_s: int
    max_concurrency: int
    models: tuple[ImageModel, ...]

    @property
    def configured(self) -> bool:
        return bool(self.base_url if self.name == "upstream" else self.api_key)

    @property
    def default_model(self) -> ImageModel:
        return self.models[0]

    def model(self, name: str | None) -> ImageModel | None:
        if not name:
            return self.default_model
        return next((m for m in self.models if m.name == name), None)

    def unavailable_reason(self) -> str | None:
        if self.configured:
            return None
        return f"Needs {self.needs}."

    def aspect_ratios(self) -> tuple[str, ...]:
        return GEMINI_ASPECT_RATIOS if self.name == "gemini" else tuple(GPT_IMAGE_SIZES)

    def sizes(self) -> tuple[str, ...]:
        """The `size` values it takes (Gemini: as the aspect ratio of that size)."""
        return tuple(GPT_IMAGE_SIZES.values()) if self.name == "openai" else SIZES

    def shape(self, size: str | None, aspect_ratio: str | None) -> dict[str, str]:
        """The request's `size` or `aspect_ratio` as this provider's parameter; ValueError
        naming what it takes when it cannot make that shape."""
        if size and aspect_ratio:
            raise ValueError("Send `size` or `aspect_ratio`, not both.")
        if self.name == "gemini":
            ratio = aspect_ratio or (_ratio_of(size) if size else None)
            if ratio is None:
                return {}
            if ratio not in GEMINI_ASPECT_RATIOS:
                raise ValueError(f"{self.label} makes {', '.join(GEMINI_ASPECT_RATIOS)}.")
            return {"aspect_ratio": ratio}
        if aspect_ratio:
            if aspect_ratio not in GPT_IMAGE_SIZES:
                raise ValueError(f"{self.label} makes {', '.join(GPT_IMAGE_SIZES)}.")
            return {"size": GPT_IMAGE_SIZES[aspect_ratio]}
        if size and size not in self.sizes():
            raise ValueError(f"{self.label} makes {', '.join(self.sizes())}.")
        return {"size": size} if size else {}


def _ratio_of(size: str) -> str:
    width, height = (int(n) for n in size.split("x"))
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def _models(provider: str, entries: list[str], setting: str) -> tuple[ImageModel, ...]:
    models = []
    for index, entry in enumerate(entries):
        name, _, cost = entry.partition(":")
        if not name.strip() or not cost.strip().isdigit() or int(cost) < 1:
            raise ImproperlyConfigured(
                f"{setting}: {entry!r} is not `model:credits` with credits of 1 or more"
            )
        models.append(ImageModel(name.strip(), provider, int(cost), default=index == 0))
    if not models:
        raise ImproperlyConfigured(f"{setting} lists no model")
    return tuple(models)


def all_providers() -> dict[str, Provider]:
    """The three providers as settings configure them now (read on each call: cheap, and
    settings changed by tests or `override_settings` apply at once)."""
    s = settings
    return {
        "gemini": Provider(
            "gemini",
            "Gemini",
            s.GEMINI_BASE_URL.rstrip("/"),
            s.GEMINI_API_KEY,
            "a Gemini key: set GEMINI_API_KEY",
            s.GEMINI_TIMEOUT_S,
            s.GEMINI_MAX_CONCURRENCY,
            _models("gemini", s.GEMINI_MODELS, "GEMINI_MODELS"),
        ),
        "openai": Provider(
            "openai",
            "OpenAI",
            s.OPENAI_BASE_URL.rstrip("/"),
            s.OPENAI_API_KEY,
            "an OpenAI key: set OPENAI_API_KEY",
            s.OPENAI_TIMEOUT_S,
            s.OPENAI_MAX_CONCURRENCY,
            _models("openai", s.OPENAI_IMAGE_MODELS, "OPENAI_IMAGE_MODELS"),
        ),
        "upstream": Provider(
            "upstream",
            "The image server",
            s.UPSTREAM_IMAGES_URL.rstrip("/"),
            s.UPSTREAM_API_KEY,
            "an image server: set UPSTREAM_IMAGES_URL",
            s.UPSTREAM_TIMEOUT_S,
            s.UPSTREAM_MAX_CONCURRENCY,
            _models("upstream", s.UPSTREAM_MODELS, "UPSTREAM_MODELS"),
        ),
    }


def get(name: str) -> Provider:
    return all_providers()[name]


def default() -> Provider | None:
    """The provider for prompts and `auto` templates: IMAGE_PROVIDER, else the first
    configured; None while none is."""
    providers = all_providers()
    if settings.IMAGE_PROVIDER:
        if settings.IMAGE_PROVIDER not in providers:
            raise ImproperlyConfigured(f"IMAGE_PROVIDER must be one of {', '.join(ORDER)}")
        chosen = providers[settings.IMAGE_PROVIDER]
        return chosen if chosen.configured else None
    return next((providers[name] for name in ORDER if providers[name].configured), None)


NO_PROVIDER = "Needs an image model: set GEMINI_API_KEY, OPENAI_API_KEY or UPSTREAM_IMAGES_URL."


def resolve(engine: str) -> Provider | None:
    """The provider an image-model engine (`auto` or a provider's name) runs on now."""
    return default() if engine == AUTO else get(engine)


def unavailable_reason(engine: str) -> str | None:
    return why_not(resolve(engine))


def why_not(provider: Provider | None) -> str | None:
    """Why a resolved provider (None: none configured) cannot run a call; None if it can."""
    return NO_PROVIDER if provider is None else provider.unavailable_reason()


def credit_cost(engine: str, model: str = "") -> int:
    """What a run on this engine and model costs (before it is configured, what it would)."""
    provider = resolve(engine) or get(ORDER[0])
    chosen = provider.model(model) or provider.default_model
    return chosen.credit_cost


def offered() -> list[ImageModel]:
    """The models of every configured provider, the default provider's first."""
    first = default()
    providers = sorted(
        (p for p in all_providers().values() if p.configured), key=lambda p: p is not first
    )
    return [model for provider in providers for model in provider.models]


# --- Calls --------------------------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def redact(text: str) -> str:
    """`text` with every configured provider key replaced, for messages and logs."""
    for provider in all_providers().values():
        if provider.api_key:
            text = text.replace(provider.api_key, "[redacted]")
    return text


def retry_after_s(response: requests.Response) -> float | None:
    """The provider's Retry-After (seconds or an HTTP date), capped; None without one."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def backoff_s(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 1 s, 2 s, 4 s… (capped) after attempt n."""
    return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Answer:
    response: requests.Response
    attempts: int


def post(provider: Provider, path: str, headers: dict[str, str], **kwargs: Any) -> Answer:
    """POST to the provider: up to MAX_ATTEMPTS on 429, 5xx and network errors, waiting the
    provider's Retry-After or a jittered backoff, never past the job's time limit. Returns the
    first other answer (2xx or 4xx: the engine reads it); EngineError when the tries run out."""
    deadline = time.monotonic() + settings.JOB_TIME_LIMIT_S
    url = provider.base_url + path
    with slot(provider):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # A call still running at the job's time limit is stopped by it (TIMEOUT).
            try:
                response = requests.post(
                    url,
                    headers=headers,
                    timeout=provider.timeout_s,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.RequestException as exc:
                problem, wait = f"could not be reached ({exc.__class__.__name__})", None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return Answer(response, attempt)
                problem, wait = f"answered {response.status_code}", retry_after_s(response)
            wait = backoff_s(attempt) if wait is None else wait
            if attempt == MAX_ATTEMPTS or time.monotonic() + wait >= deadline:
                break
            logger.info(
                "image model call retried",
                extra={"provider": provider.name, "attempt": attempt, "problem": problem},
            )
            time.sleep(wait)
    raise EngineError(f"{provider.label} {problem}, after {attempt} attempt(s).")


# --- Concurrency slots --------------------------------------------------------------------
# At most `max_concurrency` calls to a provider at once. In production mode the slots are a
# sorted set in Redis shared by every worker (each slot a lease that ends on its own if its
# worker dies); in embedded mode, a semaphore in the worker process.

ACQUIRE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[2]) - tonumber(ARGV[1])) * 1000))
  return 1
end
return 0
"""
_local_slots: dict[str, threading.BoundedSemaphore] = {}
_local_lock = threading.Lock()


@contextmanager
def slot(provider: Provider) -> Iterator[None]:
    """Hold one of the provider's call slots; waits for one (the job's time limit bounds it)."""
    if settings.REDIS_URL:
        with _redis_slot(provider):
            yield
        return
    with _local_lock:
        semaphore = _local_slots.setdefault(
            provider.name, threading.BoundedSemaphore(provider.max_concurrency)
        )
    with semaphore:
        yield


@contextmanager
def _redis_slot(provider: Provider) -> Iterator[None]:
    """A slot in Redis. If Redis cannot be reached, the call goes ahead without one (logged):
    the cap protects the provider's quota, and must not fail a paid job on its own."""
    import redis

    acquire = _slot_script(settings.REDIS_LIMITER_URL)
    client = acquire.registered_client
    key, token = f"engine-slots:{provider.name}", uuid.uuid4().hex
    # A lease outlives the longest call a slot can carry; a dead worker's slot ends with it.
    lease_s = settings.JOB_TIME_LIMIT_S + 15
    try:
        try:
            while True:
                now = time.time()
                if acquire(keys=[key], args=[now, now + lease_s, provider.max_concurrency, token]):
                    break
                time.sleep(SLOT_POLL_S)
        except redis.RedisError as exc:
            logger.warning(
                "image model call without a concurrency slot: Redis unreachable",
                extra={"provider": provider.name, "error": str(exc)},
            )
        yield
    finally:
        with contextlib.suppress(redis.RedisError):
            client.zrem(key, token)


@functools.cache
def _slot_script(url: str) -> Any:
    """One client (and connection pool) per process for the slots, with the script loaded."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return client.register_script(ACQUIRE_LUA)
