from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

from csp.middleware import CSPMiddleware as PageCSPMiddleware
from django.http import HttpRequest, HttpResponse

from nanostudio.logging import request_id_var

# A client-supplied id is echoed only if it is short and plain, so it cannot forge log lines.
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (`X-Request-Id`), on the response and on every log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _CLIENT_ID_RE.match(incoming) else "req_" + secrets.token_hex(12)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        return response


# JSON is data, never a document: nothing in it may load, run or frame (as GitHub's API sends).
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"


class CSPMiddleware(PageCSPMiddleware):
    """django-csp's policy on pages; a fixed one on JSON responses, which saves building the
    page policy on every API call (~0.1 ms)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.get("Content-Type", "").startswith("application/json"):
            response.headers.setdefault("Content-Security-Policy", JSON_CSP)
            return response
        return super().process_response(request, response)


# Query-string credentials: refused outright, they end up in logs, history and referrers.
_QUERY_KEY_NAMES = {"api_key", "apikey", "access_token", "token", "key"}
_QUERY_KEY_VALUE_RE = re.compile(r"(nh_|sk-)[0-9A-Za-z]{20,}")
_API_PAGES = ("/api/docs", "/api/openapi.json")
_UNSET = object()


class ApiMiddleware:
    """Rules for /api that hold before routing: HTTPS, no keys in URLs, body size, envelopes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        refusal = self._refuse(request)
        response = refusal or self.get_response(request)
        # The bucket that counted this request (the key's, or a refused key's address; see
        # apikeys.auth): reported here, never decided here.
        for name, value in getattr(request, "ratelimit_headers", {}).items():
            response[name] = value
        credits = getattr(request, "credits_remaining", _UNSET)
        if credits is not _UNSET:
            response["X-Credits-Remaining"] = "unlimited" if credits is None else str(credits)
        location = getattr(request, "location", None)
        if location:
            response["Location"] = location
        timings = getattr(request, "server_timing", None)
        if timings:
            # Step durations for clients and `make bench`: `Server-Timing: auth;dur=0.31`.
            response["Server-Timing"] = ", ".join(f"{k};dur={v:.3f}" for k, v in timings.items())
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = self._as_envelope(response)
        from billing import usage

        usage.record(request, response, started)
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        from django.conf import settings

        from nanostudio.errors import ApiError, error_response

        if (
            settings.SECURE_SSL_REDIRECT
            and not request.is_secure()
            and not request.path.startswith(_API_PAGES)
        ):
            return error_response(
                ApiError(
                    403,
                    "HTTPS_REQUIRED",
                    "The API is served over HTTPS only. Your key was sent in clear text: "
                    "roll it under Settings → API Keys.",
                )
            )
        for name, values in request.GET.lists():
            if name.lower() in _QUERY_KEY_NAMES or any(
                _QUERY_KEY_VALUE_RE.search(value) for value in values
            ):
                return error_response(
                    ApiError(
                        401,
                        "INVALID_API_KEY",
                        "API keys are not accepted in the URL. "
                        "Send `Authorization: Bearer <key>` instead.",
                        headers={"WWW-Authenticate": 'Bearer realm="api"'},
                    )
                )
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            return error_response(
                ApiError(
                    413,
                    "PAYLOAD_TOO_LARGE",
                    f"The request body is over the limit of {settings.API_MAX_BODY_BYTES} bytes.",
                    {"max_bytes": settings.API_MAX_BODY_BYTES},
                )
            )
        return None

    def _as_envelope(self, response: HttpResponse) -> HttpResponse:
        """Errors produced outside the API's handlers (routing, 405, crashes) in the envelope."""
        from nanostudio.errors import ApiError, error_response

        status = response.status_code
        code, message = {
            404: ("NOT_FOUND", "No such API endpoint."),
            405: ("METHOD_NOT_ALLOWED", "This endpoint does not accept that method."),
            413: ("PAYLOAD_TOO_LARGE", "The request body is too large."),
        }.get(status, ("INTERNAL_ERROR", "Something went wrong on our side. It has been logged."))
        if status >= 500:
            status = 500
        headers = {"Allow": response["Allow"]} if response.has_header("Allow") else {}
        return error_response(ApiError(status, code, message, headers=headers))
