"""Typed request classes, so views say what they can rely on, and the per-call object."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, cast

from django.http import HttpRequest, JsonResponse

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from accounts.models import User
    from apikeys.models import ApiKey
    from nanostudio.errors import ApiError


@dataclass
class ApiCall:
    """Everything one /api call learns on its way through, in one declared place: set by
    authentication and the views, read by the response headers and the usage event
    (ApiMiddleware creates it; `api_call(request)` finds it)."""

    started: float = field(default_factory=time.perf_counter)
    key: ApiKey | None = None  # the key that authenticated the call
    previous_secret: bool = False  # with a rolled key's old secret, during its grace period
    refused_key: ApiKey | None = None  # a key we know but refused (disabled, expired, …)
    job_id: uuid.UUID | None = None  # the job the call created or read
    credits_charged: int = 0
    # The balance after the call, for X-Credits-Remaining; None when the call did not read it.
    credits_remaining: int | Literal["unlimited"] | None = None
    location: str | None = None
    replayed: bool = False  # answered from an earlier call with the same Idempotency-Key
    ratelimit_headers: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)  # for Server-Timing
    error_code: str = ""

    @property
    def attributed_key(self) -> ApiKey | None:
        """The key whose owner's usage log shows this call, refused or not."""
        return self.key or self.refused_key

    def timed(self, name: str, started: float) -> None:
        """Record a step's duration since `started` (a perf_counter value)."""
        self.timings_ms[name] = (time.perf_counter() - started) * 1000

    def refuse(self, error: ApiError) -> JsonResponse:
        """The error's JSON answer, with its code noted for the usage event."""
        from nanostudio.errors import error_response

        self.error_code = error.code
        return error_response(error)


class AuthedRequest(HttpRequest):
    """A browser request from a logged-in user (behind @login_required)."""

    user: User
    htmx: HtmxDetails  # set by django-htmx's HtmxMiddleware on every request


class ApiRequest(HttpRequest):
    """An /api request authenticated by an API key: `auth` is the key, `user` its owner."""

    auth: ApiKey
    user: User
    request_id: str
    api: ApiCall


def api_call(request: HttpRequest) -> ApiCall:
    """The call object of an /api request (ApiMiddleware made it before anything else ran)."""
    return cast(ApiRequest, request).api


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address; behind a proxy (TRUST_X_FORWARDED_FOR) the first forwarded hop."""
    from django.conf import settings

    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None
