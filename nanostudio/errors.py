"""The API's error type and its JSON envelope (SPEC.md section 6)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

# Every error code the API answers with, its one HTTP status and what it means (the docs'
# error table and the OpenAPI description are made from it).
ERROR_CODES = {
    "VALIDATION_ERROR": (400, "Bad JSON or fields; `details.fields` names each."),
    "INVALID_IMAGE": (400, "Not base64, not PNG/JPEG/WebP/GIF, or a decompression bomb."),
    "MISSING_API_KEY": (401, "No credentials were sent."),
    "INVALID_API_KEY": (401, "Malformed, bad checksum, unknown, revoked or disabled key."),
    "EXPIRED_API_KEY": (401, "The key is past its expiry; `details.expired_at`."),
    "INSUFFICIENT_CREDITS": (
        402,
        "Not enough credits; `details.required`, `remaining`, `resets_at`.",
    ),
    "KEY_BUDGET_EXCEEDED": (
        402,
        "The key's own credit budget for this period is spent; `details.cap`, `spent`, `resets_at`.",
    ),
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
}


class ApiError(Exception):
    """An answer refusing the call: raise by code; the status comes from ERROR_CODES."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = ERROR_CODES[code][0]
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def validation_error(fields: dict[str, str]) -> ApiError:
    """400 VALIDATION_ERROR naming each bad field, in `details.fields` and in the message."""
    problems = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    return ApiError("VALIDATION_ERROR", f"Invalid request. {problems}", {"fields": fields})


def error_response(error: ApiError) -> JsonResponse:
    body = {
        "success": False,
        "error": {"code": error.code, "message": error.message, "details": error.details},
    }
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response
