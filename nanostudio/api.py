"""The /api NinjaAPI: mounts each app's router and puts every error in the SPEC envelope."""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, JsonResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from nanostudio.errors import ApiError, error_response

logger = logging.getLogger("nanostudio.api")

api = NinjaAPI(
    title="Nano Studio API",
    version="1",
    description=(
        "Image generation and OCR. Authenticate with `Authorization: Bearer <key>` "
        "(or HTTP Basic with the key as username and an empty password). "
        "Create keys under Settings → API Keys. Guides: [/docs/](/docs/)."
    ),
    urls_namespace="api",
)


@api.exception_handler(ApiError)
def handle_api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return error_response(exc)


@api.exception_handler(NinjaValidationError)
def handle_validation_error(request: HttpRequest, exc: NinjaValidationError) -> JsonResponse:
    fields: dict[str, str] = {}
    for error in exc.errors:
        # ninja locates errors as ("body", "payload", "field", …); keep the part a client sent.
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload")]
        fields[".".join(loc) or "body"] = error.get("msg", "Invalid value")
    return error_response(
        ApiError(400, "VALIDATION_ERROR", "The request is not valid.", {"fields": fields})
    )


@api.exception_handler(Http404)
def handle_not_found(request: HttpRequest, exc: Http404) -> JsonResponse:
    return error_response(ApiError(404, "NOT_FOUND", "Not found."))


@api.exception_handler(HttpError)
def handle_http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    code = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
        exc.status_code, "ERROR"
    )
    return error_response(ApiError(exc.status_code, code, str(exc)))


@api.exception_handler(Exception)
def handle_unexpected(request: HttpRequest, exc: Exception) -> JsonResponse:
    logger.exception("unhandled API error")
    return error_response(
        ApiError(500, "INTERNAL_ERROR", "Something went wrong on our side. It has been logged.")
    )
