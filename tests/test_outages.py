"""Backing services failing under real processes: PostgreSQL at its connection ceiling,
Redis stopped mid-wait and for a whole outage, a worker killed mid-job, gunicorn's header
limits. Each answer is the right one, no accepted job is lost, none is charged twice."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from django.db import connection
from PIL import Image

from billing.models import CreditBalance, LedgerEntry, Plan
from conftest import make_user, sample_b64, submit_in_background, usage_events, worker_env
from studio.models import Job
from tests.processes import (
    free_port,
    start_beat,
    start_redis,
    start_web,
    start_worker,
    stop_process,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
CEILING_ROLE = "nanostudio_ceiling"


class _SlowModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible images server that takes `delay_s` to answer each request, so a
    job is reliably running (or queued behind one) when the test breaks something."""

    delay_s = 1.0

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay_s)
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (250, 220, 0)).save(buffer, format="PNG")
        payload = json.dumps({"data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@contextmanager
def _slow_model(delay_s: float) -> Iterator[str]:
    handler = type("SlowModel", (_SlowModel,), {"delay_s": delay_s})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def _role_with_ceiling(limit: int) -> str:
    """A login role limited to `limit` connections, with rights on this run's tables: the
    ceiling is set without touching the shared server's max_connections."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [CEILING_ROLE])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {CEILING_ROLE} LOGIN")
        cursor.execute(f"ALTER ROLE {CEILING_ROLE} CONNECTION LIMIT {limit}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {CEILING_ROLE}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {CEILING_ROLE}")
    base = os.environ["DATABASE_URL"].rsplit("@", 1)[1].rsplit("/", 1)[0]
    return f"postgres://{CEILING_ROLE}@{base}/{name}"


def test_at_the_database_connection_ceiling_every_call_is_served_or_503(mint):
    """8 gunicorn threads, 2 connections allowed: 60 concurrent calls (profile and async
    submits, each with a valid key). None is a 500, none is relabelled as a keyless 429,
    every 503 says when to retry, and exactly the accepted submits are charged."""
    user = make_user("burst@example.com", plan="pro")
    Plan.objects.filter(slug="pro").update(max_concurrent_jobs=1000, burst=1000)
    _, secret = mint(user)
    env = worker_env({"DATABASE_URL": _role_with_ceiling(2)})
    port = free_port()
    web = start_web(env, port)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}

    def call(n: int) -> requests.Response:
        if n % 2:
            return requests.get(f"{base}/api/user/profile", headers=auth, timeout=30)
        return requests.post(
            f"{base}/api/generate",
            json=body,
            headers={**auth, "Prefer": "respond-async"},
            timeout=30,
        )

    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(call, range(60)))
    finally:
        stop_process(web)
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 202, 503}, statuses
    refused = [answer for answer in answers if answer.status_code == 503]
    assert refused, "the ceiling was never reached: the test proves nothing"
    assert len(refused) < len(answers), "nothing was served"
    for answer in refused:
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    accepted = statuses.count(202)
    assert Job.objects.filter(user=user).count() == accepted
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == accepted
    assert CreditBalance.objects.get(user=user).total == 500 - accepted


def test_a_300_call_burst_on_a_connection_pool_is_served_or_503_never_500(mint):
    """The Procfile's 2 x 32 threads, a pool of 4 connections per process, and a role that
    allows 8 (less than one per thread): 300 calls at once (profile reads and async
    submits). Each is served or gets 503 with Retry-After; none is a 500; exactly the
    accepted submits are charged."""
    user = make_user("pool@example.com", plan="enterprise")
    Plan.objects.filter(slug="enterprise").update(max_concurrent_jobs=1000, burst=1000)
    _, secret = mint(user)
    env = worker_env(
        {"DATABASE_URL": _role_with_ceiling(8), "DB_POOL_MAX": "4", "DB_POOL_TIMEOUT_S": "5"}
    )
    port = free_port()
    web = start_web(env, port, "--workers", "2", "--threads", "32", "--worker-connections", "32")
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {secret}"}
    body = {"image": sample_b64(), "template": "Sepia", "templateType": "filters"}
    start = threading.Barrier(300)

    def call(n: int) -> requests.Response:
        start.wait()
        if n % 3:
            return requests.get(f"{base}/api/user/profile", headers=auth, timeout=60)
        return requests.post(
            f"{base}/api/generate",
            json=body,
            headers={**auth, "Prefer": "respond-async"},
            timeout=60,
        )

    try:
        with ThreadPoolExecutor(max_workers=300) as pool:
            answers = list(pool.map(call, range(300)))
    finally:
        stop_process(web)
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 202, 503}, sorted(set(statuses))
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    served = len(answers) - statuses.count(503)
    print(f"pool burst: {served} of 300 served, {statuses.count(503)} answered 503")
    assert served >= 270, statuses.count(503)  # the pool queues them: few wait 5 s
    accepted = statuses.count(202)
    assert Job.objects.filter(user=user).count() == accepted
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == accepted


def test_a_waiter_that_loses_redis_answers_202_with_its_job(api, alice, alice_key, settings):
    """The job is accepted and charged; Redis, where the waiter blocks, stops mid-wait. The
    answer is the 202 of a wait that ran out, not an error a client would retry and pay for."""
    from studio import waiting

    port = free_port()
    redis_server = start_redis(port)
    settings.REDIS_LIMITER_URL = f"redis://127.0.0.1:{port}/0"  # the limiter and the waiters
    waiting._redis.cache_clear()
    try:
        started = time.monotonic()
        waiter, answers = submit_in_background(api, alice_key[1])
        deadline = time.monotonic() + 10
        while not Job.objects.filter(user=alice).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the waiter is blocked on Redis now
        stop_process(redis_server)
        waiter.join(timeout=20)
    finally:
        stop_process(redis_server)
        waiting._redis.cache_clear()
    assert time.monotonic() - started < 10  # not the 30 s wait
    response = answers[0]
    assert response.status_code == 202, response.content
    job = Job.objects.get(user=alice)
    assert response["Location"] == f"/api/jobs/{job.pk}"
    assert response.json()["data"]["status"] == "queued"
    assert CreditBalance.objects.get(user=alice).total == 49  # charged once, and only once


def test_a_valid_key_is_never_counted_or_answered_by_the_keyless_limiter(api, alice_key, settings):

    for _ in range(settings.API_KEYLESS_RATE_PER_MINUTE):
        assert api("get", "/api/user/profile", key="nh_" + "x" * 38).status_code == 401
    assert api("get", "/api/user/profile", key="nh_" + "x" * 38).status_code == 429
    # The address is over its keyless limit; a valid key from it is served all the same.
    response = api("get", "/api/user/profile", key=alice_key[1])
    assert response.status_code == 200
    # The key's bucket (Free: 10 a minute, burst 15), not the address's (60, 60).
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Burst"]) == ("10", "15")
    response = api("get", "/api/nope", key=alice_key[1])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_an_oversized_header_gets_the_json_envelope(alice_key):
    """A 20,000-character Idempotency-Key reaches our code (gunicorn's field limit is raised
    in the Procfile) and is refused in the API's own words."""
    procfile = (Path(__file__).parent.parent / "Procfile").read_text()
    field_limit = re.search(r"--limit-request-field_size (\d+)", procfile).group(1)
    port = free_port()
    web = start_web(worker_env(), port, "--limit-request-field_size", field_limit)
    try:
        response = requests.post(
            f"http://127.0.0.1:{port}/api/generate",
            json={"image": sample_b64(), "template": "Sepia", "templateType": "filters"},
            headers={"Authorization": f"Bearer {alice_key[1]}", "Idempotency-Key": "k" * 20_000},
            timeout=30,
        )
    finally:
        stop_process(web)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "Idempotency-Key" in error["details"]["fields"]
    assert not Job.objects.exists()


def _wait_all_final(job_ids: list[str], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if Job.objects.filter(pk__in=job_ids, status__in=Job.FINAL).count() == len(job_ids):
            break
        time.sleep(0.25)
    return time.monotonic() - started


OUTAGE_S = float(os.environ.get("NANO_TEST_OUTAGE_S", "5"))
# The sweeper's timings, shortened so that these faults recover in seconds rather than the
# defaults' half-minute (sweep every 10 s, stale after 15 s, re-send after 30 s). The bounds
# asserted below follow from them.
SWEEP_S, STALE_S, RESEND_S = 2, 5, 8
FAST_SWEEP = {
    "JOB_SWEEP_EVERY_S": str(SWEEP_S),
    "JOB_HEARTBEAT_EVERY_S": "1",
    "JOB_STALE_RUNNING_S": str(STALE_S),
    "JOB_RESEND_QUEUED_AFTER_S": str(RESEND_S),
}


def test_the_worker_finishes_every_job_after_a_redis_outage(mint, tmp_path):
    """Web, worker and beat on a Redis of the test's own, stopped for OUTAGE_S while jobs are
    queued and running, then started empty (as a Redis without persistence comes back).
    Every accepted job then finishes, none twice, no human action: once the sweeper has sent
    the lost messages again, each in turn (a second each)."""
    user = make_user("outage@example.com", plan="pro")
    Plan.objects.filter(slug="pro").update(max_concurrent_jobs=1000)
    _, secret = mint(user)
    port = free_port()
    redis_server = start_redis(port)
    web_port = free_port()
    with _slow_model(delay_s=1.0) as model_url:
        env = worker_env(
            {
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "UPSTREAM_IMAGES_URL": model_url,
                **FAST_SWEEP,
            }
        )
        processes = [
            start_web(env, web_port),
            start_worker(env),
            start_beat(env, tmp_path / "beat-schedule"),
        ]
        worker = processes[1]
        auth = {"Authorization": f"Bearer {secret}", "Prefer": "respond-async"}
        try:
            job_ids = []
            for n in range(8):
                response = requests.post(
                    f"http://127.0.0.1:{web_port}/api/generate",
                    json={"prompt": f"cat number {n}"},
                    headers=auth,
                    timeout=30,
                )
                assert response.status_code == 202, response.content
                job_ids.append(response.json()["data"]["id"])
            time.sleep(1.5)  # one job running, the others queued in Redis
            stop_process(redis_server)
            unfinished = Job.objects.filter(pk__in=job_ids).exclude(status="succeeded").count()
            time.sleep(OUTAGE_S)
            redis_server = start_redis(port)
            recovery_s = _wait_all_final(job_ids, 90)
            print(
                f"Redis outage of {OUTAGE_S:.0f} s with {unfinished} of 8 jobs unfinished: "
                f"all done {recovery_s:.1f} s after Redis returned"
            )
            assert worker.poll() is None, "the worker died"
        finally:
            for process in (*processes, redis_server):
                stop_process(process)
    assert unfinished >= 5, "the jobs finished before the outage: the test proves nothing"
    jobs = Job.objects.filter(pk__in=job_ids)
    assert sorted(set(jobs.values_list("status", flat=True))) == ["succeeded"]
    assert recovery_s <= RESEND_S + SWEEP_S + 8 * 1.0 + 5  # + 5 s for the worker to reconnect
    assert LedgerEntry.objects.filter(user=user, kind="debit").count() == 8
    assert not LedgerEntry.objects.filter(user=user, kind="refund").exists()
    assert CreditBalance.objects.get(user=user).total == 500 - 8 * 2  # 2 credits a prompt


def test_a_killed_workers_job_is_back_in_work_once_its_mark_is_stale(api, mint, tmp_path, settings):
    """SIGKILL the worker mid-job, start another: the job's heartbeat stops and beat's sweeper
    hands it to the new worker, which finishes it."""
    user = make_user("kill@example.com", plan="enterprise")
    _, secret = mint(user)
    with _slow_model(delay_s=4.0) as model_url:
        settings.UPSTREAM_IMAGES_URL = model_url
        env = worker_env({"UPSTREAM_IMAGES_URL": model_url, **FAST_SWEEP})
        worker = start_worker(env)
        beat = start_beat(env, tmp_path / "beat-schedule")
        try:
            response = api(
                "post",
                "/api/generate",
                key=secret,
                json={"prompt": "a cat"},
                headers={"Prefer": "respond-async"},
            )
            job_id = response.json()["data"]["id"]
            deadline = time.monotonic() + 30
            while Job.objects.get(pk=job_id).status != "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert Job.objects.get(pk=job_id).status == "running"
            time.sleep(1)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            killed_at = time.monotonic()
            worker = start_worker(env)
            while Job.objects.get(pk=job_id).attempts < 2 and time.monotonic() - killed_at < 60:
                time.sleep(0.1)
            back_in_work_s = time.monotonic() - killed_at
            print(f"a killed worker's job was back in work {back_in_work_s:.1f} s later")
            deadline = killed_at + 90
            while not (job := Job.objects.get(pk=job_id)).is_final and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop_process(worker)
            stop_process(beat)
    assert back_in_work_s <= STALE_S + SWEEP_S + 5  # + 5 s for the new worker to start
    assert (job.status, job.attempts) == ("succeeded", 2)


def test_a_web_process_killed_mid_load_loses_no_answered_requests_event(mint):
    """16 clients call the profile as fast as they can; the web process is killed (SIGKILL,
    no shutdown) under that load. Every request a client got an answer to has its usage
    event (in the stream when the process died, moved here); the only events beyond those
    are of requests cut off between keeping their event and their answer, at most one per
    client."""
    user = make_user("killed@example.com", plan="enterprise")
    Plan.objects.filter(slug="enterprise").update(burst=100_000)
    _, secret = mint(user)
    port = free_port()
    web = start_web(worker_env(), port)
    url = f"http://127.0.0.1:{port}/api/user/profile"
    answered: list[tuple[int, str]] = []
    clients = 16

    def load() -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {secret}"
            while True:
                try:
                    answer = session.get(url, timeout=10)
                except requests.RequestException:  # refused, reset or cut short: no answer
                    return
                answered.append((answer.status_code, answer.headers["X-Request-Id"]))

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(answered) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(web.pid, signal.SIGKILL)
    web.wait()
    for thread in threads:
        thread.join(15)

    assert len(answered) >= 300, "the load never got going: the test proves nothing"
    assert {status for status, _ in answered} == {200}
    events = set(usage_events().filter(user=user).values_list("request_id", flat=True))
    assert {request_id for _, request_id in answered} <= events
    assert len(events) <= len(answered) + clients
