"""Shared API schemas: the success and error envelopes, and the error responses per route."""

from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, create_model, field_validator

ERROR_CODES = {
    "VALIDATION_ERROR": (400, "Bad JSON or fields; `details.fields` names each."),
    "INVALID_IMAGE": (400, "Not base64, not PNG/JPEG/WebP/GIF, or a decompression bomb."),
    "MISSING_API_KEY": (401, "No credentials were sent."),
    "INVALID_API_KEY": (401, "Malformed, bad checksum, unknown, revoked or disabled key."),
    "EXPIRED_API_KEY": (401, "The key is past its expiry; `details.expired_at`."),
    "INSUFFICIENT_CREDITS": (402, "Not enough credits; `details.required`, `remaining`, `resets_at`."),
    "INSUFFICIENT_PERMISSIONS": (403, "The key lacks the scope, or the plan lacks the feature."),
    "HTTPS_REQUIRED": (403, "Plain HTTP in production."),
    "NOT_FOUND": (404, "Unknown id, or another user's object."),
    "METHOD_NOT_ALLOWED": (405, "The endpoint does not accept this method."),
    "IDEMPOTENCY_KEY_IN_USE": (409, "A request with this Idempotency-Key is still running."),
    "JOB_NOT_CANCELLABLE": (409, "The job has already started or finished."),
    "CANCELLED": (409, "The job you waited for was cancelled; refunded. `details.job`."),
    "PAYLOAD_TOO_LARGE": (413, "The body is over the limit."),
    "IDEMPOTENCY_KEY_REUSED": (422, "This Idempotency-Key was used with another body."),
    "CONTENT_REJECTED": (422, "The model provider refused the content; refunded. `details.job`."),
    "RATE_LIMIT_EXCEEDED": (429, "Too many requests; `Retry-After` and `details.retry_after`."),
    "TOO_MANY_CONCURRENT_JOBS": (429, "The plan's concurrent-job cap is reached."),
    "INTERNAL_ERROR": (500, "Our fault; never a stack trace."),
    "ENGINE_ERROR": (502, "The job failed in its engine; refunded. `details.job`."),
    "WORKER_LOST": (502, "The job's worker died past its attempts; refunded. `details.job`."),
    "ENGINE_UNAVAILABLE": (503, "The template's engine is not configured or is down."),
    "SERVICE_UNAVAILABLE": (503, "A backing service is down; `Retry-After`."),
    "TIMEOUT": (504, "The job ran past its time limit; refunded. `details.job`."),
}  # fmt: skip


class Input(Schema):
    """A request body or query: unknown fields are refused, not ignored (a misspelt
    `expires_at` must not make a key that never expires), and so is a NUL character in any
    string, which no field means and PostgreSQL cannot store. Both are 400 VALIDATION_ERROR
    naming the field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def no_nul_characters(cls, value: Any) -> Any:
        strings = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in strings):
            raise ValueError("NUL characters (\\u0000) are not allowed.")
        return value


class ErrorBody(Schema):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(Schema):
    success: Literal[False]
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """A route's error responses for its OpenAPI entry: those any /api route can answer (a bad
    query or header, no valid key, a missing scope or plain HTTP, the rate limit, a backing
    service down) plus `statuses`, the route's own."""
    return dict.fromkeys(sorted({400, 401, 403, 429, 500, 503, *statuses}), ErrorOut)


_envelopes: dict[type, type] = {}


def envelope(schema: Any) -> type[Schema]:
    """`{"success": true, "data": <schema>}` as a named schema (one per data schema)."""
    if schema not in _envelopes:
        name = getattr(schema, "__name__", "Data").replace("Out", "") + "Response"
        _envelopes[schema] = create_model(
            name, __base__=Schema, success=(Literal[True], True), data=(schema, ...)
        )
    return _envelopes[schema]


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}
