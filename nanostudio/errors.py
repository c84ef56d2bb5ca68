"""The API's error type and its JSON envelope (SPEC.md section 6)."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def validation_error(fields: dict[str, str]) -> ApiError:
    """400 VALIDATION_ERROR naming each bad field, in `details.fields` and in the message."""
    problems = "; ".join(f"{name}: {problem}" for name, problem in fields.items())
    return ApiError(400, "VALIDATION_ERROR", f"Invalid request. {problems}".strip(),
                    {"fields": fields})  # fmt: skip


def error_response(error: ApiError) -> JsonResponse:
    body = {
        "success": False,
        "error": {"code": error.code, "message": error.message, "details": error.details},
    }
    response = JsonResponse(body, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response
