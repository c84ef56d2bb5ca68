from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Router

from billing.credits import credit_summary
from billing.models import plan_of
from nanostudio.http import ApiRequest
from nanostudio.schemas import Schema, envelope, errors, ok

router = Router(tags=["profile"])


class UserOut(Schema):
    id: int
    email: str
    name: str
    joined: datetime


class PlanOut(Schema):
    slug: str
    name: str
    monthly_credits: int | None
    rate_per_minute: int
    burst: int
    max_api_keys: int
    max_concurrent_jobs: int


class CreditsOut(Schema):
    remaining: int | None
    monthly_allowance: int | None
    resets_at: datetime | None


class CurrentKeyOut(Schema):
    id: int
    name: str
    hint: str
    scopes: list[str]
    expires_at: datetime | None


class ProfileOut(Schema):
    user: UserOut
    plan: PlanOut | None
    credits: CreditsOut
    key: CurrentKeyOut


@router.get("/profile", response={200: envelope(ProfileOut), **errors()})
def profile(request: ApiRequest) -> dict[str, Any]:
    """Who you are: your user, plan, credits left and when they reset, and this key."""
    user, key = request.user, request.auth
    return ok(
        {
            "user": {
                "id": user.pk,
                "email": user.email,
                "name": user.name,
                "joined": user.date_joined,
            },
            "plan": plan_of(user),
            "credits": credit_summary(user),
            "key": key,
        }
    )
