"""Shared API schemas: the success and error envelopes, and the error responses per route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model, field_validator


class Schema(BaseModel):
    """Every API schema's base: pydantic's own model, reading a Django object's attributes
    (`from_attributes`) as ninja's `Schema` does, in pydantic's compiled code.

    ninja's `Schema` wraps every value it validates, nested ones included, in a `DjangoGetter`
    that resolves each field in Python, and validates a body that forbids unknown fields
    twice; none of our schemas uses what that buys (`resolve_` methods, a model method or a
    file field called or read for its value). Validating the profile's answer took 52 µs that
    way and takes 11 µs this way.
    """

    model_config = ConfigDict(from_attributes=True)


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


class Body(Input):
    """A JSON request body: types as the schema says them, without coercion (`true` or `"1"`
    is not the integer 1)."""

    model_config = ConfigDict(strict=True)


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


def utc_timestamp(moment: datetime) -> str:
    """A time as every body shows it: ISO 8601 in UTC with a `Z` (as the schemas serialise)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
