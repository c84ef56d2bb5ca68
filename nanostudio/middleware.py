from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from csp.middleware import CSPMiddleware as PageCSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from nanostudio.errors import ApiError
from nanostudio.http import ApiCall, ApiRequest
from nanostudio.logging import request_id_var
from nanostudio.schemas import utc_timestamp

# A client-supplied id is echoed only if it is short and plain, so it cannot forge log lines.
KEY_EXPIRY_WARNING = timedelta(days=14)  # Nano-Key-Expires on calls with a key this close
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (`X-Request-Id`), on the response and on every log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _CLIENT_ID_RE.match(incoming) else "req_" + secrets.token_hex(12)
        cast(ApiRequest, request).request_id = request_id  # declared on the typed request
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

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.get("Content-Type", "").startswith("application/json"):
            response.headers.setdefault("Content-Security-Policy", JSON_CSP)
            return response
        return super().process_response(request, response)


# Query-string credentials: refused outright, they end up in logs, history and referrers.
_QUERY_KEY_NAMES = {"api_key", "apikey", "access_token", "token", "key"}
# Anything shaped like one of our keys (refused in query strings, redacted from logged paths).
KEY_LIKE_RE = re.compile(r"(nh_|sk-)[0-9A-Za-z]{20,}")
_API_PAGES = ("/api/docs", "/api/openapi.json")


class ApiMiddleware:
    """Rules for /api that hold before routing (HTTPS, no keys in URLs, body size), the call
    object every later step writes to (nanostudio.http.ApiCall), and the answer's headers and
    error envelope from it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        call = ApiCall()
        cast(ApiRequest, request).api = call
        response = self._refuse(request, call) or self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = self._as_envelope(response, call)
        # The bucket that counted this request (the key's, or a refused key's address; see
        # apikeys.auth): reported here, never decided here.
        for name, value in call.ratelimit_headers.items():
            response[name] = value
        if call.credits_remaining is not None:
            response["X-Credits-Remaining"] = str(call.credits_remaining)
        expires_at = call.key.expires_at if call.key else None
        if expires_at and expires_at - timezone.now() <= KEY_EXPIRY_WARNING:
            # Early warning, as GitHub's token-expiration header: roll the key before then.
            response["Nano-Key-Expires"] = utc_timestamp(expires_at)
        if call.location:
            response["Location"] = call.location
        if call.replayed:
            response["Idempotent-Replayed"] = "true"
        if call.timings_ms:
            # Step durations for clients and `make bench`: `Server-Timing: auth;dur=0.31`.
            response["Server-Timing"] = ", ".join(
                f"{name};dur={ms:.3f}" for name, ms in call.timings_ms.items()
            )
        return response

    @staticmethod
    def _refuse(request: HttpRequest, call: ApiCall) -> HttpResponse | None:
        if (
            settings.SECURE_SSL_REDIRECT
            and not request.is_secure()
            and not request.path.startswith(_API_PAGES)
        ):
            return call.refuse(
                ApiError(
                    "HTTPS_REQUIRED",
                    "The API is served over HTTPS only. Your key was sent in clear text: "
                    "roll it under Settings → API Keys.",
                )
            )
        for name, values in request.GET.lists():
            if name.lower() in _QUERY_KEY_NAMES or any(
                KEY_LIKE_RE.search(value) for value in values
            ):
                return call.refuse(
                    ApiError(
                        "INVALID_API_KEY",
                        "API keys are not accepted in the URL. "
                        "Send `Authorization: Bearer <key>` instead.",
                        headers={"WWW-Authenticate": 'Bearer realm="api"'},
                    )
                )
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > settings.API_MAX_BODY_BYTES:
            return call.refuse(
                ApiError(
                    "PAYLOAD_TOO_LARGE",
                    f"The request body is over the limit of {settings.API_MAX_BODY_BYTES} bytes.",
                    {"max_bytes": settings.API_MAX_BODY_BYTES},
                )
            )
        return None

    @staticmethod
    def _as_envelope(response: HttpResponse, call: ApiCall) -> HttpResponse:
        """Errors produced outside the API's handlers (routing, 405, crashes) in the envelope."""
        status = response.status_code
        code, message = {
            404: ("NOT_FOUND", "No such API endpoint."),
            405: ("METHOD_NOT_ALLOWED", "This endpoint does not accept that method."),
            413: ("PAYLOAD_TOO_LARGE", "The request body is too large."),
        }.get(status, ("INTERNAL_ERROR", "Something went wrong on our side. It has been logged."))
        headers = {"Allow": response["Allow"]} if response.has_header("Allow") else {}
        return call.refuse(ApiError(code, message, headers=headers))
