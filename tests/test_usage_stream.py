"""Production mode's usage events: appended to a Redis stream in the request, moved to
PostgreSQL in batches; none lost, none moved twice (usage.stream, usage.metering)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from django.db import transaction

from conftest import usage_events, worker_env
from tests.processes import free_port, start_redis, start_usage_mover, stop_process
from usage import metering, stream
from usage.models import StreamMark, UsageEvent

pytestmark = pytest.mark.services


def _profile(api, secret: str, times: int = 1) -> list[str]:
    """Call the profile; returns the answers' request ids."""
    ids = []
    for _ in range(times):
        response = api("get", "/api/user/profile", key=secret)
        assert response.status_code == 200
        ids.append(response["X-Request-Id"])
    return ids


def test_an_answered_requests_event_waits_in_the_stream_until_moved(api, alice_key):
    key, secret = alice_key
    (request_id,) = _profile(api, secret)
    assert stream.events().waiting() == 1
    assert not UsageEvent.objects.exists()  # not in the database yet

    assert metering.move_waiting() == 1
    event = UsageEvent.objects.get()
    assert (event.key_id, event.endpoint, event.status, event.request_id) == (
        key.pk,
        "GET /api/user/profile",
        200,
        request_id,
    )
    assert event.latency_ms > 0 and event.rate_limit is not None and event.server_timing
    assert metering.move_waiting() == 0


@pytest.mark.django_db(transaction=True)
def test_events_move_oldest_first_in_batches_and_the_moved_are_trimmed(api, alice_key):
    """Batches of 2, a reader's bound of 3, then the rest."""
    ids = _profile(api, alice_key[1], times=5)
    assert metering.move_waiting(batch=2, most=3) == 3  # a reader's bound: 2, then 1
    assert stream.events().waiting() == 2
    assert metering.move_waiting(batch=2, most=None) == 2
    assert list(UsageEvent.objects.order_by("id").values_list("request_id", flat=True)) == ids
    assert stream.events().waiting() == 0
    assert StreamMark.objects.get().last_id != "0-0"


@pytest.mark.django_db(transaction=True)
def test_a_mover_stopped_between_its_commit_and_the_trim_moves_nothing_twice(api, alice_key):
    """The state such a mover leaves: its events and its mark committed, its entries still in
    the stream. The next move inserts none of them again, and trims them."""
    _profile(api, alice_key[1], times=3)
    events = stream.events()
    entries = events.after("0-0", 10)
    with transaction.atomic():
        metering._insert(metering._of_live_keys([json.loads(e) for _, e in entries]))
        StreamMark.objects.create(stream=stream.STREAM, last_id=entries[-1][0])
    assert events.waiting() == 3

    (request_id,) = _profile(api, alice_key[1])  # one more, not moved yet
    assert metering.move_waiting() == 1
    assert UsageEvent.objects.count() == 4
    assert UsageEvent.objects.filter(request_id=request_id).count() == 1
    assert events.waiting() == 0


@pytest.mark.django_db(transaction=True)
def test_a_move_inside_a_transaction_that_rolls_back_leaves_the_events_waiting(api, alice_key):
    """A refund moves the waiting events inside its own transaction: if that rolls back, so
    does the move, and the entries stay for the next one."""
    _profile(api, alice_key[1], times=2)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert metering.move_waiting() == 2
        raise RuntimeError("the refund failed")
    assert not UsageEvent.objects.exists()
    assert stream.events().waiting() == 2
    assert metering.move_waiting() == 2
    assert usage_events().count() == 2


def test_with_the_streams_redis_unreachable_the_event_is_written_in_the_request(
    api, alice_key, settings, caplog
):
    settings.REDIS_USAGE_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    stream.events.cache_clear()
    (request_id,) = _profile(api, alice_key[1])
    assert UsageEvent.objects.get().request_id == request_id
    assert "usage stream unreachable: the event is written to the database" in caplog.text
    # Readers still answer (with what the database holds).
    assert metering.move_waiting() == 0
    assert api("get", "/api/usage", key=alice_key[1]).json()["data"]["totals"]["requests"] == 1


def test_the_request_log_shows_the_request_just_answered(api, alice_key, alice_client):
    (request_id,) = _profile(api, alice_key[1])
    page = alice_client.get(f"/usage/requests/{request_id}/")
    assert page.status_code == 200 and request_id in page.content.decode()
    listed = api("get", "/api/requests", key=alice_key[1]).json()["data"]["requests"]
    assert request_id in {row["request_id"] for row in listed}


@pytest.mark.django_db(transaction=True)
def test_the_usage_process_moves_the_events_waiting_when_it_is_stopped(api, alice_key):
    """`manage.py move_usage_events` with a move every 10 minutes: after its first move, the
    events answered later are moved only by the move it makes on SIGTERM."""
    _profile(api, alice_key[1])
    mover = start_usage_mover(worker_env({"USAGE_MOVE_EVERY_MS": "600000"}))
    try:
        deadline = time.monotonic() + 30
        while not UsageEvent.objects.exists():  # its first move is done
            assert mover.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        ids = _profile(api, alice_key[1], times=3)
        time.sleep(0.3)
        assert UsageEvent.objects.count() == 1  # waiting for the next move, 10 minutes away
        mover.send_signal(signal.SIGTERM)
        assert mover.wait(15) == 0
    finally:
        if mover.poll() is None:
            mover.kill()
            mover.wait()
    assert set(ids) <= set(UsageEvent.objects.values_list("request_id", flat=True))
    assert UsageEvent.objects.count() == 4 and stream.events().waiting() == 0


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_key_is_gone_before_its_move_costs_only_itself(api, alice, mint, caplog):
    _, kept_secret = mint(alice, name="kept")
    gone, gone_secret = mint(alice, name="gone")
    (first,) = _profile(api, kept_secret)
    _profile(api, gone_secret)
    (last,) = _profile(api, kept_secret)
    gone.delete()  # its event is still in the stream: the foreign key now refuses it

    assert metering.move_waiting() == 3  # taken from the stream: two written, one dropped
    assert list(UsageEvent.objects.order_by("id").values_list("request_id", flat=True)) == [
        first,
        last,
    ]
    assert "usage event of a deleted key dropped" in caplog.text
    assert stream.events().waiting() == 0


@pytest.mark.django_db(transaction=True)
def test_no_answered_requests_event_is_lost_when_the_streams_redis_crashes(
    api, alice_key, settings, tmp_path
):
    """The usage events' Redis as deploy.md asks (appendonly, appendfsync always) is killed
    (SIGKILL) with events waiting; while it is down the requests write their own events; after
    it restarts on its files, every answered request's event is moved, none twice."""
    port = free_port()
    durable = ("--appendonly", "yes", "--appendfsync", "always")
    server = start_redis(port, *durable, folder=tmp_path)
    settings.REDIS_USAGE_URL = f"redis://127.0.0.1:{port}/0"
    stream.events.cache_clear()
    try:
        waiting = _profile(api, alice_key[1], times=6)
        assert stream.events().waiting() == 6
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        down = _profile(api, alice_key[1], times=3)  # written in the request
        assert UsageEvent.objects.count() == 3
        server = start_redis(port, *durable, folder=tmp_path)
        assert metering.move_waiting() == 6
    finally:
        stop_process(server)
    moved = list(UsageEvent.objects.values_list("request_id", flat=True))
    assert sorted(moved) == sorted(waiting + down)
