"""SENTRY_DSN turns error reporting on (to a real local server standing in for Sentry), and
/metrics answers the Prometheus exposition format with the requests it served."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import sample_b64
from studio.tasks import run_job
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
CRASH = """
import logging
from nanostudio.logging import request_id_var
request_id_var.set("req_sentry0001")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("nanostudio.jobs").exception("the engine crashed")
import sentry_sdk
sentry_sdk.flush(5)
"""


def _envelope_items(body: bytes, headers: dict[str, str]) -> list[dict]:
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    items = []
    for line in body.decode().splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    return items


def test_sentry_dsn_sends_errors_with_their_request_id(tmp_path):
    sentry = Receiver()
    try:
        env = {
            **os.environ,
            "SENTRY_DSN": f"http://publickey@127.0.0.1:{sentry.port}/42",
            "VAR_DIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", CRASH],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 10
        while not sentry.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sentry.close()
    assert sentry.received, "nothing reached the Sentry server"
    request = sentry.received[0]
    assert request.path == "/api/42/envelope/"
    events = [
        item
        for received in sentry.received
        for item in _envelope_items(received.body, received.headers)
        if item.get("exception")
    ]
    assert events, [r.body[:200] for r in sentry.received]
    event = events[0]
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert event["tags"]["request_id"] == "req_sentry0001"
    assert {"django", "celery"} <= set(event["sdk"]["integrations"])


def _scrape(client, token="metrics-token"):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"})


def _value(text: str, line_start: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


def test_metrics_are_off_without_a_token_and_closed_without_it(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "metrics-token"
    assert client.get("/metrics").status_code == 401
    assert _scrape(client, "wrong").status_code == 401


@pytest.mark.django_db(transaction=True)  # counted after commit, as in production
def test_metrics_count_requests_jobs_and_credits(api, alice_key, client, settings):
    settings.METRICS_TOKEN = "metrics-token"
    before = _scrape(client).content.decode()
    for _ in range(3):
        assert api("get", "/api/user/profile", key=alice_key[1]).status_code == 200
    submit = lambda: api(  # noqa: E731
        "post",
        "/api/generate",
        key=alice_key[1],
        json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
        headers={"Prefer": "respond-async"},
    )
    run_job(submit().json()["data"]["id"])  # as the worker would: counted as it ends
    submit()
    response = _scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")  # the exposition format
    after = response.content.decode()
    profile = 'nano_http_requests_total{method="GET",route="/api/user/profile",status="200"}'
    assert _value(after, profile) - _value(before, profile) == 3
    assert "nano_http_request_duration_seconds_bucket" in after
    assert (
        _value(after, "nano_credits_debited_total") - _value(before, "nano_credits_debited_total")
        == 2
    )
    assert _value(after, 'nano_jobs{status="queued"}') == 1
    ended = 'nano_jobs_finished_total{kind="generate",status="succeeded"}'
    assert _value(after, ended) - _value(before, ended) == 1
    took = 'nano_job_duration_seconds_count{kind="generate",status="succeeded"}'
    assert _value(after, took) - _value(before, took) == 1
    assert "nano_usage_rollup_lag_seconds" in after
    if settings.REDIS_URL:  # production mode: 3 profiles and 2 submits, no reader since
        assert _value(after, "nano_usage_events_waiting") == 5


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_every_gunicorn_worker(tmp_path):
    """Two gunicorn workers, each with its own counters: any one of them answers the sum."""
    import requests

    from conftest import worker_env
    from tests.processes import free_port, start_web, stop_process

    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = worker_env({"PROMETHEUS_MULTIPROC_DIR": str(folder), "METRICS_TOKEN": "t0ken"})
    port = free_port()
    web = start_web(env, port, "--workers", "2", "--threads", "2")
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(20):
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        healthz = 'nano_http_requests_total{method="GET",route="/healthz",status="200"}'
        for _ in range(4):  # whichever worker answers
            scraped = requests.get(
                f"{base}/metrics", headers={"Authorization": "Bearer t0ken"}, timeout=10
            )
            assert scraped.status_code == 200
            assert _value(scraped.text, healthz) == 20
    finally:
        stop_process(web)
