"""`make bench ARGS=jobs`."""

from __future__ import annotations

import json
import os
import statistics
import time
from functools import partial
from unittest import mock

from bench.harness import (
    ENV,
    OUT,
    PROXY_HEADERS,
    bench_user,
    gunicorn,
    interleaved,
    record,
    sepia_body,
)
from tests.processes import start_worker, stop_process

SUBMIT_CAPTURE = OUT / "submit-round-trips.pickle"
JOB_USERS = 20


def _capture_submits(secrets: list[str], body: dict) -> tuple[int, int]:
    """Record one async submit per key: its SQL statements (with their parameters and whether
    they ran in the transaction) and its Redis sends, for bench/floor.py to replay in turn (so
    the replay, like the load, spreads its jobs over the users). Returns one submit's counts."""
    import pickle

    from django.db import connection
    from django.test import Client
    from redis.connection import AbstractConnection

    captures = []
    send = AbstractConnection.send_packed_command
    for secret in secrets:
        headers = {"Authorization": f"Bearer {secret}", "Prefer": "respond-async"}
        client = Client(headers={**PROXY_HEADERS, **headers})
        submit = partial(client.post, "/api/generate", body, content_type="application/json")
        submit()  # warm: connections, prepared statements, the queue's declaration
        statements: list[tuple[str, object, bool]] = []
        sent: list[object] = []

        def counting_send(self, command, *args, sent=sent, **kwargs):  # a pipeline is one send
            sent.append(command)
            return send(self, command, *args, **kwargs)

        def capture(execute, sql, params, many, context, statements=statements):
            statements.append((sql, params, connection.in_atomic_block))
            return execute(sql, params, many, context)

        with (
            mock.patch.object(AbstractConnection, "send_packed_command", counting_send),
            connection.execute_wrapper(capture),
        ):
            assert submit().status_code == 202
        captures.append({"statements": statements, "redis": sent})
    SUBMIT_CAPTURE.write_bytes(pickle.dumps(captures))
    # BEGIN and COMMIT do not pass through the wrapper: one each around the transaction.
    return len(captures[0]["statements"]) + 2, len(captures[0]["redis"])


def run() -> None:
    """Async submits against the bare view; submit-to-done latency; sync waiters held."""
    import threading

    import requests

    from nanostudio.celery import app
    from studio.models import Job

    # The load is spread over several users, as a real API's is, so that no user reaches the
    # plan's concurrent-job cap (a 429 is cheaper than an accepted job and would flatter).
    secrets = [
        bench_user(f"jobs{n}@example.com", scopes=["generate", "jobs:read"])[1]
        for n in range(JOB_USERS)
    ]
    secret = secrets[0]
    body = sepia_body()
    script = OUT / "submit.lua"
    OUT.mkdir(parents=True, exist_ok=True)
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
        f"local secrets = {{{', '.join(json.dumps(s) for s in secrets)}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n % #secrets + 1\n"
        '  wrk.headers["Authorization"] = "Bearer " .. secrets[n]\n'
        "  return wrk.format()\n"
        "end\n"
    )
    sql, redis_calls = _capture_submits(secrets, body)
    trips = sql + redis_calls
    record(f"jobs: round trips per async submit ({sql} SQL + {redis_calls} Redis)", trips)

    def clear_queue() -> None:
        """Cancel the jobs a load left queued (no worker runs) and drop their messages, so that
        the next load starts where this one did."""
        Job.objects.filter(status=Job.Status.QUEUED).update(status=Job.Status.CANCELLED)
        app.control.purge()

    # As the Procfile runs it: a worker takes no more connections than it has threads.
    with gunicorn(threads=32, worker_connections=32, app="bench.floor:application") as base:
        bare, floor, replay, lean, submit = interleaved(
            [
                (f"{base}/healthz", {}, None),
                (f"{base}/floor/round-trips/{trips}", {}, None),
                (f"{base}/floor/submit-replay", {}, None),
                (f"{base}/floor/submit-replay/lean", {}, None),
                (f"{base}/api/generate", {"Prefer": "respond-async"}, str(script)),
            ],
            seconds=6,
            after=clear_queue,
        )
        record("jobs: bare JSON view req/s (median of 3 interleaved rounds)", bare["rps"])
        record(f"jobs: floor req/s, bare + {trips} SELECT 1 round trips", floor["rps"])
        record("jobs: floor req/s, bare + the submit's own round trips replayed", replay["rps"])
        record("jobs: the same without savepoint and plan query (lean)", lean["rps"])
        record("jobs: async submit req/s (Prefer: respond-async)", submit["rps"])
        record("jobs: async submit / bare throughput", submit["rps"] / bare["rps"])
        record("jobs: SELECT 1 floor / bare throughput", floor["rps"] / bare["rps"])
        record("jobs: replay floor / bare throughput", replay["rps"] / bare["rps"])
        record("jobs: lean replay floor / bare throughput", lean["rps"] / bare["rps"])
        record("jobs: async submit / replay floor throughput", submit["rps"] / replay["rps"])
        record(
            "jobs: non-2xx responses (replays, submit)",
            sum(run["non_2xx"] for run in (replay, lean, submit)),
        )

        worker = start_worker({**os.environ, **ENV}, "--concurrency", "2")
        try:
            session = requests.Session()
            auth = {**PROXY_HEADERS, "Authorization": f"Bearer {secret}"}
            latencies = []
            for _ in range(30):
                started = time.perf_counter()
                response = session.post(f"{base}/api/generate", json=body, headers=auth, timeout=60)
                assert (
                    response.status_code == 200 and response.json()["data"]["status"] == "succeeded"
                ), response.text
                latencies.append(time.perf_counter() - started)
            record(
                "jobs: submit-to-done latency, 64x64 Sepia, sync (median of 30)",
                statistics.median(latencies) * 1000,
                "ms",
            )

            # 50 clients waiting on jobs that cannot finish (no worker): does /profile still answer?
            stop_process(worker)
            waiters = [
                threading.Thread(
                    target=lambda: requests.post(
                        f"{base}/api/generate", json=body, headers=auth, timeout=60
                    )
                )
                for _ in range(50)
            ]
            for thread in waiters:
                thread.start()
            time.sleep(2)
            profile = []
            for _ in range(50):
                started = time.perf_counter()
                ok_ = (
                    session.get(f"{base}/api/user/profile", headers=auth, timeout=10).status_code
                    == 200
                )
                profile.append((time.perf_counter() - started) * 1000 if ok_ else float("inf"))
            record("jobs: sync waiters held open", 50)
            record("jobs: /profile median while 50 wait", statistics.median(profile), "ms")
            record("jobs: /profile max while 50 wait", max(profile), "ms")
            for thread in waiters:
                thread.join()
        finally:
            stop_process(worker)
