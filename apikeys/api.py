"""/api/keys: manage keys from a script (scope `keys:write`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Router, Status
from pydantic import ConfigDict, Field, field_validator, model_validator

from apikeys.auth import ApiKeyAuth
from apikeys.models import (
    BUDGET_CAP_MAX,
    PRESETS,
    ROLL_GRACE_PERIODS,
    ApiKey,
    KeyLimitReached,
    KeyNameTaken,
    Scope,
)
from billing.models import Plan, plan_of
from nanostudio.errors import ApiError, validation_error
from nanostudio.http import ApiRequest
from nanostudio.schemas import Body, Schema, envelope, errors, ok

router = Router(tags=["keys"], auth=ApiKeyAuth(Scope.KEYS_WRITE))
NAME_RULE = "Unique among your live keys (400 VALIDATION_ERROR if taken); trimmed."
RATE_RULE = (
    "This key's own requests per minute, at most the plan's (which all your keys share); "
    "the plan's rate clears it."
)

# Literals built from the Scope enum and the grace table, so the schema lists their values.
# mypy needs a Literal spelled out and cannot follow one built at import time.
ScopeName = Literal[tuple(scope.value for scope in Scope)]  # type: ignore[valid-type]
Grace = Literal[tuple(ROLL_GRACE_PERIODS)]  # type: ignore[valid-type]


BudgetPeriodName = Literal["day", "week", "month", "billing"]


class BudgetOut(Schema):
    cap: int
    period: BudgetPeriodName
    spent: int = Field(description="Credits spent in this period (refunds given back).")
    resets_at: datetime


class BudgetIn(Body):
    cap: int = Field(ge=1, le=BUDGET_CAP_MAX, description="Credits this key may spend per period.")
    period: BudgetPeriodName = "month"


class KeyOut(Schema):
    id: int
    name: str
    hint: str
    scopes: list[str]
    status: str = Field(validation_alias="display_status")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    previous_secret_valid_until: datetime | None = Field(validation_alias="previous_valid_until")
    rate_per_minute: int | None = Field(description="Its own rate; null: the plan's.")
    budget: BudgetOut | None = Field(
        validation_alias="budget_status", description="Its credit cap; null: none."
    )


class KeyWithSecretOut(Schema):
    key: KeyOut
    secret: str = Field(description="The full key. Shown once: store it now.")


class KeyListOut(Schema):
    keys: list[KeyOut]


class KeyCreateIn(Body):
    """Exactly one of `preset` and `scopes`."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["preset"]}, {"required": ["scopes"]}]}
    )

    name: str = Field(min_length=1, max_length=100, pattern=r"\S", description=NAME_RULE)
    # Not nullable: leave the field out instead (the two are exclusive). The None default
    # marks "left out" without making null a valid value in the schema.
    preset: Literal["full", "generate", "read"] = Field(default=None)  # type: ignore[arg-type]
    scopes: list[ScopeName] = Field(default=None, min_length=1)  # type: ignore[valid-type,arg-type]
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    prefix: Literal["nh_", "sk-"] = "nh_"
    rate_per_minute: int | None = Field(default=None, ge=1, description=RATE_RULE)
    budget: BudgetIn | None = Field(default=None, description="A credit cap per period.")

    @field_validator("name")
    @classmethod
    def strip_name(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def one_of_preset_or_scopes(self) -> KeyCreateIn:
        if (self.preset is None) == (self.scopes is None):
            raise ValueError("Give either `preset` or `scopes`.")
        return self


class KeyRollIn(Body):
    grace: Grace = "24h"  # type: ignore[valid-type]  # see ScopeName


class KeyUpdateIn(Body):
    name: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"\S", description=NAME_RULE
    )
    enabled: bool | None = None
    scopes: list[ScopeName] | None = Field(  # type: ignore[valid-type]
        default=None, min_length=1, description="With a key: only narrower than now."
    )
    expires_at: datetime | None = Field(
        default=None, strict=False, description="RFC 3339 time; null: never expires."
    )
    rate_per_minute: int | None = Field(default=None, ge=1, description=RATE_RULE)
    budget: BudgetIn | None = Field(default=None, description="A credit cap; null removes it.")


def _own_rate(request: ApiRequest, rate: int | None) -> int | None:
    """A key's own rate as stored: None for the plan's; 400 above the plan's."""
    plan_rate = (plan_of(request.user) or Plan()).rate_per_minute
    if rate is None or rate == plan_rate:
        return None
    if rate > plan_rate:
        raise validation_error(
            {"rate_per_minute": f"At most your plan's {plan_rate} requests per minute."}
        )
    return rate


def _get_key_for_user(request: ApiRequest, key_id: int) -> ApiKey:
    """The owner's key, if the calling key may manage it (its scopes are a subset)."""
    key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    beyond = key.scopes_beyond(request.auth)
    if beyond:
        raise ApiError(
            "INSUFFICIENT_PERMISSIONS",
            "This key can only manage keys whose scopes it holds itself.",
            {"required_scope": " ".join(beyond)},
        )
    return key


def _name_taken(taken: KeyNameTaken) -> ApiError:
    return validation_error({"name": str(taken)})


@router.get("", response={200: envelope(KeyListOut), **errors()})
def list_keys(request: ApiRequest, include_revoked: bool = False) -> dict[str, Any]:
    """Your keys that this key may manage (scopes a subset of its own), newest first.
    Secrets are never shown again."""
    keys = ApiKey.objects.filter(user=request.user)
    if not include_revoked:
        keys = keys.exclude(status=ApiKey.Status.REVOKED)
    return ok({"keys": [key for key in keys if not key.scopes_beyond(request.auth)]})


@router.post("", response={201: envelope(KeyWithSecretOut), **errors(413)})
def create_key(request: ApiRequest, payload: KeyCreateIn) -> Status[dict[str, Any]]:
    """Create a key. A key can only grant scopes it holds itself."""
    scopes = list(PRESETS[payload.preset][1]) if payload.preset else list(payload.scopes or [])
    missing = sorted(set(scopes) - set(request.auth.scopes))
    if missing:
        raise ApiError(
            "INSUFFICIENT_PERMISSIONS",
            "A key can only grant scopes it holds itself.",
            {"required_scope": " ".join(missing)},
        )
    expires_at = (
        timezone.now() + timedelta(days=payload.expires_in_days)
        if payload.expires_in_days
        else None
    )
    own_rate = _own_rate(request, payload.rate_per_minute)
    try:
        key, secret = ApiKey.objects.mint(
            request.user,
            name=payload.name,
            scopes=scopes,
            expires_at=expires_at,
            prefix=payload.prefix,
            rate_per_minute=own_rate,
            budget_credits=payload.budget.cap if payload.budget else None,
            budget_period=payload.budget.period if payload.budget else "month",
        )
    except KeyLimitReached as limit:
        raise ApiError(
            "INSUFFICIENT_PERMISSIONS",
            f"{limit} Revoke one or upgrade your plan.",
            {"limit": limit.limit},
        ) from None
    except KeyNameTaken as taken:
        raise _name_taken(taken) from None
    return Status(201, ok({"key": key, "secret": secret}))


@router.get("/{int:key_id}", response={200: envelope(KeyOut), **errors(404)})
def get_key(request: ApiRequest, key_id: int) -> dict[str, Any]:
    return ok(_get_key_for_user(request, key_id))


@router.patch("/{int:key_id}", response={200: envelope(KeyOut), **errors(404, 413)})
def update_key(request: ApiRequest, key_id: int, payload: KeyUpdateIn) -> dict[str, Any]:
    """Change a key without rolling it: name, scopes (only narrower), expiry, budget, rate, or
    disable (`enabled: false`, reversible) and re-enable it. A key disabled on the API Keys
    page can only be re-enabled there, by its owner. All or nothing; each change is in the
    account's security log."""
    key = _get_key_for_user(request, key_id)
    if key.status == ApiKey.Status.REVOKED:
        raise ApiError("VALIDATION_ERROR", "A revoked key cannot be changed.", {"fields": {}})
    with transaction.atomic():  # a refused part undoes the rest: all or nothing
        if payload.name is not None and payload.name.strip() != key.name:
            try:
                key.rename(payload.name.strip())
            except KeyNameTaken as taken:
                raise _name_taken(taken) from None
        if payload.scopes is not None:
            wider = sorted(set(payload.scopes) - set(key.scopes))
            if wider:  # a key may narrow a key, never widen it (the owner can, on the page)
                raise ApiError(
                    "INSUFFICIENT_PERMISSIONS",
                    "With an API key, a key's scopes can only be narrowed; widen them on the "
                    "API Keys page.",
                    {"required_scope": " ".join(wider)},
                )
            key.set_scopes(list(payload.scopes))
        if "expires_at" in payload.model_fields_set:
            if payload.expires_at is not None and payload.expires_at <= timezone.now():
                raise validation_error({"expires_at": "Give a time in the future, or null."})
            key.set_expiry(payload.expires_at)
        if "budget" in payload.model_fields_set:
            budget = payload.budget
            key.set_budget(budget.cap if budget else None, budget.period if budget else "month")
        if "rate_per_minute" in payload.model_fields_set:
            key.set_rate(_own_rate(request, payload.rate_per_minute))
        if payload.enabled is not None and not key.set_enabled(payload.enabled, by_key=True):
            raise ApiError(
                "INSUFFICIENT_PERMISSIONS",
                "This key was disabled by its owner; only they can enable it on the API Keys page.",
                {"disabled_by": "owner"},
            )
    return ok(key)


@router.post("/{int:key_id}/roll", response={200: envelope(KeyWithSecretOut), **errors(404, 413)})
def roll_key(request: ApiRequest, key_id: int, payload: KeyRollIn) -> dict[str, Any]:
    """New secret, same name and scopes; the old secret works for `grace` (now, 1h, 24h, 7d)."""
    key = _get_key_for_user(request, key_id)
    if key.status == ApiKey.Status.REVOKED:
        raise ApiError("NOT_FOUND", "API key not found.")
    secret = key.roll(payload.grace)
    return ok({"key": key, "secret": secret})


@router.delete("/{int:key_id}", response={200: envelope(KeyOut), **errors(404)})
def revoke_key(request: ApiRequest, key_id: int) -> dict[str, Any]:
    """Revoke a key for good: the next request with it gets 401."""
    key = _get_key_for_user(request, key_id)
    key.revoke()
    return ok(key)
