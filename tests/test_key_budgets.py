"""Per-key credit budgets: a cap per period that holds under concurrency, refunds give it back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apikeys import budget
from apikeys.models import BUDGET_CAP_MAX, ApiKey, KeySpend
from billing.models import LedgerEntry
from conftest import make_user, race_submits, sample_b64
from studio import actions
from studio.models import Job

SEPIA = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}


@pytest.mark.parametrize("cap", [0, BUDGET_CAP_MAX + 1, 2061080310275333674074374144])
def test_a_cap_out_of_range_is_a_400_on_the_api_and_a_form_error_on_the_page(
    api, alice, alice_key, fresh_login, cap
):
    """Found by the contract fuzzer: a cap past the column's range was a 500."""
    response = api(
        "post", "/api/keys", key=alice_key[1], json={"name": "huge", "budget": {"cap": cap}}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "budget.cap" in error["details"]["fields"]
    key, _ = alice_key
    page = fresh_login.post(
        reverse("apikeys:edit", args=[key.pk]),
        {"scopes": key.scopes, "budget_cap": str(cap), "budget_period": "day"},
    )
    assert page.status_code == 422 and "budget_cap" in page.context["form"].errors
    assert ApiKey.objects.filter(user=alice).count() == 1
    key.refresh_from_db()
    assert key.budget_credits is None


def test_a_key_past_its_budget_gets_402_and_nothing_is_charged(api, mint, db):
    user = make_user("budget@example.com", plan="pro")
    _, admin = mint(user)
    created = api(
        "post",
        "/api/keys",
        key=admin,
        json={"name": "capped", "preset": "generate", "budget": {"cap": 2, "period": "day"}},
    ).json()["data"]
    capped = created["secret"]
    assert created["key"]["budget"]["cap"] == 2 and created["key"]["budget"]["spent"] == 0
    async_ = {"Prefer": "respond-async"}
    for _ in range(2):
        assert (
            api("post", "/api/generate", key=capped, json=SEPIA, headers=async_).status_code == 202
        )
    balance_before = user.credit_balance.__class__.objects.get(user=user).total
    response = api("post", "/api/generate", key=capped, json=SEPIA, headers=async_)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "KEY_BUDGET_EXCEEDED"
    assert (error["details"]["cap"], error["details"]["spent"]) == (2, 2)
    assert error["details"]["resets_at"].endswith("T00:00:00Z")  # the next UTC day
    assert user.credit_balance.__class__.objects.get(user=user).total == balance_before
    assert Job.objects.filter(user=user).count() == 2
    # Other keys of the account are not held by this key's cap.
    assert api("post", "/api/generate", key=admin, json=SEPIA, headers=async_).status_code == 202
    # A refund gives budget back; lifting the cap lifts it.
    job = Job.objects.filter(api_key_id=created["key"]["id"]).first()
    assert actions.cancel(job)
    key = api("get", f"/api/keys/{created['key']['id']}", key=admin).json()["data"]
    assert key["budget"]["spent"] == 1
    assert api("post", "/api/generate", key=capped, json=SEPIA, headers=async_).status_code == 202
    response = api("patch", f"/api/keys/{created['key']['id']}", key=admin, json={"budget": None})
    assert response.json()["data"]["budget"] is None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_200_concurrent_submits_against_a_cap_of_10_accept_exactly_10(mint):
    user = make_user("race@example.com", plan="enterprise")  # unlimited credits: only the cap
    key, _ = mint(user, scopes=["generate"])
    ApiKey.objects.filter(pk=key.pk).update(budget_credits=10, budget_period="month")
    key.refresh_from_db()
    # 40 threads, 5 submits each: 200 submits, 40 at a time.
    accepted, refused = race_submits(user, key, threads=40, each=5)
    assert len(accepted) == 10
    assert refused.count("KEY_BUDGET_EXCEEDED") == 190
    assert KeySpend.objects.get(key=key).spent == 10
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == 10
    assert Job.objects.filter(user=user).count() == 10
    # Refunds give the budget back, exactly.
    for job in Job.objects.filter(pk__in=accepted[:3]):
        assert actions.cancel(job)
    assert KeySpend.objects.get(key=key).spent == 7
    assert LedgerEntry.objects.filter(user=user, kind="refund").count() == 3


def test_budget_periods(db, mint):
    user = make_user("periods@example.com")
    key, _ = mint(user)
    now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # a Thursday
    expected = {
        "day": (datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
        "week": (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
        "month": (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)),
    }
    for period, bounds in expected.items():
        key.budget_period = period
        assert budget.period_bounds(key, now) == bounds, period
    key.budget_period = "billing"
    anchor = user.subscription.billing_anchor_day
    start, end = budget.period_bounds(key, now)
    assert start.day == anchor or start.month != end.month
