from __future__ import annotations

import math

import pytest
import time_machine
from django.db.models import Sum

from apikeys import ratelimit
from billing.models import LedgerEntry, Plan
from studio.models import Job
from tests.processes import free_port, start_redis, stop_process

START = 1_900_000_000.0  # a fixed instant; the clock only moves when the test moves it


def test_exactly_15_in_a_burst_then_one_per_6_seconds(api, alice_key):
    _, secret = alice_key
    with time_machine.travel(START, tick=False) as clock:
        for n in range(15):
            response = api("get", "/api/user/profile", key=secret)
            assert response.status_code == 200
            assert response["X-RateLimit-Limit"] == "10"  # per minute, as the plan sells it
            assert response["X-RateLimit-Burst"] == "15"
            assert response["X-RateLimit-Remaining"] == str(14 - n)
            assert response["X-RateLimit-Reset"] == str(math.ceil(START + 6 * (n + 1)))
        response = api("get", "/api/user/profile", key=secret)
        assert response.status_code == 429
        assert response["Retry-After"] == "6"
        assert response["X-RateLimit-Remaining"] == "0"
        assert response["X-RateLimit-Reset"] == str(math.ceil(START + 90))
        error = response.json()["error"]
        assert error["code"] == "RATE_LIMIT_EXCEEDED"
        assert error["details"]["retry_after"] == 6

        clock.shift(5.9)
        assert api("get", "/api/user/profile", key=secret).status_code == 429
        clock.shift(0.1)
        response = api("get", "/api/user/profile", key=secret)
        assert response.status_code == 200
        assert response["X-RateLimit-Remaining"] == "0"
        assert api("get", "/api/user/profile", key=secret).status_code == 429
        clock.shift(6)
        assert api("get", "/api/user/profile", key=secret).status_code == 200


def test_a_429_costs_nothing_and_records_no_job(api, alice, alice_key):
    _, secret = alice_key
    before = LedgerEntry.objects.filter(user=alice).aggregate(total=Sum("amount"))["total"]
    with time_machine.travel(START, tick=False):
        for _ in range(15):
            api("get", "/api/user/profile", key=secret)
        response = api("get", "/api/user/profile", key=secret)
    assert response.status_code == 429
    assert LedgerEntry.objects.filter(user=alice).aggregate(total=Sum("amount"))["total"] == before
    assert Job.objects.count() == 0


def test_limits_are_per_key_and_come_from_the_plan(api, alice, mint):
    _, first = mint(alice, name="first")
    _, second = mint(alice, name="second")
    Plan.objects.filter(slug="free").update(rate_per_minute=60, burst=2)  # takes effect now
    with time_machine.travel(START, tick=False):
        assert [api("get", "/api/user/profile", key=first).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        response = api("get", "/api/user/profile", key=second)
        assert response.status_code == 200
        assert (response["X-RateLimit-Limit"], response["X-RateLimit-Burst"]) == ("60", "2")


def test_requests_without_a_valid_key_are_limited_by_address(api, db, settings):
    with time_machine.travel(START, tick=False):
        for _ in range(settings.API_KEYLESS_RATE_PER_MINUTE):
            response = api("get", "/api/user/profile")
            assert response.status_code == 401
            assert "X-RateLimit-Remaining" in response
        response = api("get", "/api/user/profile")
    assert response.status_code == 429
    assert response["Retry-After"] == "1"


def test_credits_remaining_header(api, alice_key):
    _, secret = alice_key
    assert api("get", "/api/user/profile", key=secret)["X-Credits-Remaining"] == "50"


@pytest.mark.services
def test_redis_down_is_a_503_then_recovers_by_itself(api, alice_key):
    """A real Redis of our own, stopped and started again; never calls through unmetered."""
    _, secret = alice_key
    port = free_port()
    server = start_redis(port)
    try:
        ratelimit._limiter = ratelimit.RedisLimiter(f"redis://127.0.0.1:{port}/0")
        assert api("get", "/api/user/profile", key=secret).status_code == 200
        stop_process(server)
        response = api("get", "/api/user/profile", key=secret)
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        server = start_redis(port)
        assert api("get", "/api/user/profile", key=secret).status_code == 200
    finally:
        stop_process(server)
