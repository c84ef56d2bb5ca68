"""Authentication for /api: a key from `Authorization: Bearer` or HTTP Basic, and its scopes."""

from __future__ import annotations

import base64
import binascii
import math
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security.base import AuthBase

from apikeys import ratelimit
from apikeys.models import ApiKey, AuthFailure
from audit.context import Actor, set_actor
from billing.models import Plan, plan_of
from nanostudio.errors import ApiError
from nanostudio.http import api_call, client_ip
from nanostudio.schemas import utc_timestamp

LIMITER_RETRY_AFTER_S = 5
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}
MESSAGES = {
    "MISSING_API_KEY": (
        "No API key. Send it as `Authorization: Bearer <key>`; "
        "create one under Settings → API Keys."
    ),
    "INVALID_API_KEY": "The API key is not valid: it is malformed, unknown, disabled or revoked.",
    "EXPIRED_API_KEY": "The API key has expired. Create a new one under Settings → API Keys.",
}


def _unauthorized(
    code: str, message: str | None = None, details: dict[str, Any] | None = None
) -> ApiError:
    return ApiError(code, message or MESSAGES[code], details, headers=CHALLENGE)


def credentials_from(request: HttpRequest) -> str:
    """The raw key from the Authorization header (Bearer, or Basic with an empty password)."""
    header = request.headers.get("Authorization", "").strip()
    if not header:
        raise _unauthorized("MISSING_API_KEY")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("INVALID_API_KEY") from None
        username, _, password = decoded.partition(":")
        if password:
            raise _unauthorized(
                "INVALID_API_KEY", "With HTTP Basic, send the key as the username and no password."
            )
        return username
    raise _unauthorized("INVALID_API_KEY", "Unsupported Authorization scheme: use `Bearer <key>`.")


class ApiKeyAuth(AuthBase):
    """Any valid key; with `scopes`, the key must hold at least one of them."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_description = "An API key (`nh_…` or `sk-…`) as `Authorization: Bearer <key>`."

    def __init__(self, *scopes: str) -> None:
        self.scopes = scopes
        super().__init__()

    def __call__(self, request: HttpRequest) -> ApiKey:
        started = time.perf_counter()
        call = api_call(request)
        try:
            key = ApiKey.objects.authenticate(credentials_from(request))
        except AuthFailure as failure:
            call.refused_key = failure.key
            details = (
                {"expired_at": utc_timestamp(failure.expired_at)} if failure.expired_at else None
            )
            raise keyless(request, _unauthorized(failure.code, details=details)) from None
        except ApiError as error:  # no credentials, or not of a form we accept
            raise keyless(request, error) from None
        call.key = key
        call.previous_secret = key.presented_previous_secret
        ip = client_ip(request)
        set_actor(Actor("key", f"API key {key.label}", ip))
        # Only the key speaks for the caller on /api: a browser session is never used here.
        request.user = key.user
        balance = getattr(key.user, "credit_balance", None)
        plan = plan_of(key.user)
        if plan is not None and plan.is_unlimited:
            call.credits_remaining = "unlimited"
        elif balance is not None:
            call.credits_remaining = balance.total
        call.timed("auth", started)
        enforce_rate_limit(request, key, plan or Plan())
        if self.scopes and not key.has_scope(*self.scopes):
            raise ApiError(
                "INSUFFICIENT_PERMISSIONS",
                f"This API key lacks the `{self.scopes[0]}` scope.",
                {"required_scope": " or ".join(self.scopes)},
            )
        key.touch(ip)
        return key


def keyless(request: HttpRequest, refusal: ApiError) -> ApiError:
    """A caller without a valid key is limited by address (it slows key guessing): past the
    limit the answer is 429 instead of `refusal`. Only here, before any view runs, and only
    for requests whose key was refused: a request with a valid key is never counted by
    address, whatever happens to it later."""
    try:
        rate = settings.API_KEYLESS_RATE_PER_MINUTE  # its burst too
        decision, now = ratelimit.check(ratelimit.Bucket(f"ip:{client_ip(request)}", rate, rate))
    except ratelimit.LimiterUnavailable:
        return refusal  # refused anyway: a limiter outage changes nothing for it
    api_call(request).ratelimit_headers = decision.headers(now)
    if decision.allowed:
        return refusal
    retry_after = math.ceil(decision.retry_after_s)
    return ApiError(
        "RATE_LIMIT_EXCEEDED",
        f"Too many requests without a valid API key. Retry in {retry_after} s.",
        {"retry_after": retry_after},
    )


def enforce_rate_limit(request: HttpRequest, key: ApiKey, plan: Plan) -> None:
    """Count the request against the key's bucket and its account's (the plan's rate applies
    to all of an account's keys together; a key may have a lower rate of its own), in one
    round trip; raise 429 past either limit, 503 if Redis is down."""
    started = time.perf_counter()
    key_rate = min(key.rate_per_minute or plan.rate_per_minute, plan.rate_per_minute)
    key_burst = min(plan.burst, max(1, round(plan.burst * key_rate / plan.rate_per_minute)))
    try:
        decision, now = ratelimit.check(
            ratelimit.Bucket(f"key:{key.pk}", key_rate, key_burst),
            ratelimit.Bucket(f"account:{key.user_id}", plan.rate_per_minute, plan.burst),
        )
    except ratelimit.LimiterUnavailable:
        raise ApiError(
            "SERVICE_UNAVAILABLE",
            "Rate limiting is temporarily unavailable, so the request was not accepted. "
            "Nothing was charged; retry shortly.",
            headers={"Retry-After": str(LIMITER_RETRY_AFTER_S)},
        ) from None
    call = api_call(request)
    call.timed("ratelimit", started)
    call.ratelimit_headers = decision.headers(now)
    if not decision.allowed:
        retry_after = math.ceil(decision.retry_after_s)
        whose = (
            "this key's own limit"
            if decision.rate_per_minute < plan.rate_per_minute
            else "your account's limit, shared by all its keys"
        )
        raise ApiError(
            "RATE_LIMIT_EXCEEDED",
            f"Rate limit of {decision.rate_per_minute} requests per minute (burst "
            f"{decision.burst}; {whose}) exceeded. Retry in {retry_after} s.",
            {
                "retry_after": retry_after,
                "limit": decision.rate_per_minute,
                "burst": decision.burst,
            },
        )
