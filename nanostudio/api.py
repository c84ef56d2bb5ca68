"""The /api NinjaAPI: mounts each app's router and puts every error in the SPEC envelope."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser
from ninja.types import DictStrAny

from apikeys.auth import ApiKeyAuth
from nanostudio.errors import ERROR_CODES, ApiError, validation_error
from nanostudio.http import api_call

logger = logging.getLogger("nanostudio.api")
_PARAM_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}

_ERROR_TABLE = "\n".join(
    f"| {status} | `{code}` | {meaning} |" for code, (status, meaning) in ERROR_CODES.items()
)

DESCRIPTION = f"""
Image generation and OCR. Guides and examples: [/docs/](/docs/).

**Authentication.** Send an API key as `Authorization: Bearer <key>`, or as HTTP Basic with the
key as the username and an empty password. Create keys under *Settings → API Keys*. Keys in
query strings are refused; browser sessions are ignored.

**Responses.** `{{"success": true, "data": {{…}}}}` or
`{{"success": false, "error": {{"code": "…", "message": "…", "details": {{…}}}}}}`.
Every response carries `X-Request-Id`.

| status | code | when |
|---|---|---|
{_ERROR_TABLE}
"""


class OnceEachParser(Parser):
    """Query parameters as the schema publishes them: each one once. A repeated one
    (`?status=2xx&status=4xx`) is a 400 naming it, never silently its last value."""

    def parse_querydict(
        self, data: MultiValueDict[str, str], list_fields: list[str], request: HttpRequest
    ) -> DictStrAny:
        repeated = [
            key for key, values in data.lists() if len(values) > 1 and key not in list_fields
        ]
        if repeated:
            raise NinjaValidationError(
                [
                    {"loc": ("query", key), "msg": "Given more than once: send it once."}
                    for key in repeated
                ]
            )
        return super().parse_querydict(data, list_fields, request)


class StudioApi(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: DictStrAny | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        # ApiKeyAuth reads HTTP Basic too; document it as a second, equivalent scheme.
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["ApiKeyBasic"] = {
            "type": "http",
            "scheme": "basic",
            "description": "The API key as the username, an empty password.",
        }
        for methods in schema["paths"].values():
            for operation in methods.values():
                if any("ApiKeyAuth" in entry for entry in operation.get("security", [])):
                    operation["security"].append({"ApiKeyBasic": []})
        return schema


api = StudioApi(
    title="Nano Studio API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=ApiKeyAuth(),
    parser=OnceEachParser(),
)


@api.exception_handler(ApiError)
def handle_api_error(request: HttpRequest, exc: ApiError) -> JsonResponse:
    return api_call(request).refuse(exc)


@api.exception_handler(NinjaValidationError)
def handle_validation_error(request: HttpRequest, exc: NinjaValidationError) -> JsonResponse:
    fields: dict[str, str] = {}
    for error in exc.errors:
        # ninja locates errors as ("body", "payload", "field", …) or ("query", "field");
        # keep the part a client sent.
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] in _PARAM_SOURCES:
            loc = loc[1:]
        if loc and loc[0] == "payload":
            loc = loc[1:]
        if error.get("type") == "extra_forbidden":
            message = "Unknown field: this endpoint does not take it (see /api/docs)."
        else:  # pydantic prefixes our own validators' messages with "Value error, "
            message = error.get("msg", "Invalid value").removeprefix("Value error, ")
        fields[".".join(loc) or "body"] = message
    return api_call(request).refuse(validation_error(fields))


@api.exception_handler(Http404)
def handle_not_found(request: HttpRequest, exc: Http404) -> JsonResponse:
    return api_call(request).refuse(ApiError("NOT_FOUND", "Not found."))


@api.exception_handler(RequestDataTooBig)
def handle_too_big(request: HttpRequest, exc: RequestDataTooBig) -> JsonResponse:
    return api_call(request).refuse(ApiError("PAYLOAD_TOO_LARGE", "The request body is too large."))


@api.exception_handler(HttpError)
def handle_http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    if exc.status_code == 400:  # the body is not JSON (ninja's parser)
        return api_call(request).refuse(validation_error({"body": str(exc)}))
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INTERNAL_ERROR")
    return api_call(request).refuse(ApiError(code, str(exc)))


DATABASE_RETRY_AFTER_S = 5


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def handle_database_unavailable(request: HttpRequest, exc: DatabaseError) -> JsonResponse:
    """The database refused or dropped the connection ("too many clients", a restart, a
    lock or statement timeout): the call did not happen, so it is safe to retry. Anything
    the call wrote was rolled back with its transaction, so nothing was charged."""
    logger.warning("database unavailable", extra={"error": str(exc).strip()[:200]})
    return api_call(request).refuse(
        ApiError(
            "SERVICE_UNAVAILABLE",
            "The database is unavailable right now, so the request was not carried out. "
            "Nothing was charged; retry shortly.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )
    )


@api.exception_handler(Exception)
def handle_unexpected(request: HttpRequest, exc: Exception) -> JsonResponse:
    logger.exception("unhandled API error")
    return api_call(request).refuse(
        ApiError("INTERNAL_ERROR", "Something went wrong on our side. It has been logged.")
    )


api.add_router("/user", "accounts.api.router")
api.add_router("/keys", "apikeys.api.router")
api.add_router("/usage", "usage.api.router")
api.add_router("/requests", "usage.api.requests_router")
api.add_router("/webhooks", "webhooks.api.router")
api.add_router("", "studio.api.router")
