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


def test_the_plans_rate_is_shared_by_the_accounts_keys(api, alice, mint):
    """N keys no longer get N times the rate; the headers report the tighter bucket."""
    _, first = mint(alice, name="first")
    _, second = mint(alice, name="second")
    Plan.objects.filter(slug="free").update(rate_per_minute=60, burst=3)  # takes effect now
    with time_machine.travel(START, tick=False) as clock:
        assert api("get", "/api/user/profile", key=first).status_code == 200
        assert api("get", "/api/user/profile", key=first).status_code == 200
        response = api("get", "/api/user/profile", key=second)
        assert response.status_code == 200
        # The second key's own bucket is nearly full; the account's has nothing left.
        assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("60", "0")
        response = api("get", "/api/user/profile", key=second)
        assert response.status_code == 429
        assert "shared by all its keys" in response.json()["error"]["message"]
        clock.shift(1)  # one more per second, for the account as a whole
        assert api("get", "/api/user/profile", key=second).status_code == 200
        assert api("get", "/api/user/profile", key=first).status_code == 429


def test_a_key_can_have_a_lower_rate_of_its_own(api, alice, alice_key, mint):
    _, admin_key = alice_key
    created = api(
        "post",
        "/api/keys",
        key=admin_key,
        json={"name": "batch job", "preset": "generate", "rate_per_minute": 6},
    ).json()["data"]
    assert created["key"]["rate_per_minute"] == 6
    slow = created["secret"]
    too_fast = api(
        "post",
        "/api/keys",
        key=admin_key,
        json={"name": "x", "preset": "read", "rate_per_minute": 11},
    )
    assert too_fast.status_code == 400
    assert "rate_per_minute" in too_fast.json()["error"]["details"]["fields"]
    with time_machine.travel(START, tick=False):
        # Free: 10/min, burst 15; this key: 6/min, burst 9 (the plan's burst, scaled).
        codes = [api("get", "/api/user/profile", key=slow).status_code for _ in range(10)]
        assert codes == [200] * 9 + [429]
        response = api("get", "/api/user/profile", key=slow)
        assert (response["X-RateLimit-Limit"], response["X-RateLimit-Burst"]) == ("6", "9")
        assert "this key's own limit" in response.json()["error"]["message"]
        # The account had 15: 9 went to the slow key (the 10th was refused, counted nowhere).
        codes = [api("get", "/api/user/profile", key=admin_key).status_code for _ in range(7)]
        assert codes == [200] * 6 + [429]
    key_id = created["key"]["id"]
    with time_machine.travel(START + 120, tick=False):  # the buckets have refilled
        body = {"rate_per_minute": 10}
        response = api("patch", f"/api/keys/{key_id}", key=admin_key, json=body)
    assert response.json()["data"]["rate_per_minute"] is None  # the plan's rate clears it


@pytest.mark.django_db(transaction=True)
def test_two_keys_hammering_together_get_the_plans_burst_between_them(db, mint, live_server):
    """Free: burst 15. Two keys, 40 requests at once from 8 threads, the clock stopped:
    exactly 15 answered, whichever key sent them."""
    import threading

    import requests

    from conftest import make_user

    user = make_user("hammer@example.com")
    secrets = [mint(user, name=f"key {n}")[1] for n in range(2)]
    codes: list[int] = []
    lock = threading.Lock()

    def hammer(secret: str) -> None:
        session = requests.Session()
        for _ in range(5):
            response = session.get(
                f"{live_server.url}/api/user/profile",
                headers={"Authorization": f"Bearer {secret}"},
                timeout=30,
            )
            with lock:
                codes.append(response.status_code)

    with time_machine.travel(START, tick=False):
        threads = [threading.Thread(target=hammer, args=(secrets[n % 2],)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(codes) == 40
    assert codes.count(200) == 15 and codes.count(429) == 25


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
