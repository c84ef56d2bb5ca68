from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import free_port, start_redis, start_worker, stop_process

ROOT = Path(__file__).resolve().parent.parent


def test_embedded_mode_boots_on_sqlite_and_runs_a_task_on_a_real_worker(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")
    }
    env["VAR_DIR"] = str(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (tmp_path / "nanostudio.sqlite3").exists()

    worker = start_worker(env)
    try:
        call = subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'nanostudio.settings'); "
                    "django.setup(); from django.conf import settings; from nanostudio.celery import ping; "
                    "print(settings.CELERY_BROKER_URL, settings.DATABASES['default']['ENGINE'], ping.delay().get(timeout=60))"
                ),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop_process(worker)
    assert call.returncode == 0, call.stderr
    assert call.stdout.strip().splitlines()[-1].split() == [
        "filesystem://",
        "django.db.backends.sqlite3",
        "pong",
    ]
    # The message went through the folder broker on disk.
    assert (tmp_path / "broker" / "queue").is_dir()


@pytest.mark.services
def test_production_mode_runs_a_task_on_a_real_worker_over_redis(celery_worker, settings):
    from nanostudio.celery import ping

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert ping.delay().get(timeout=30) == "pong"


@pytest.mark.services
def test_the_broker_sends_through_one_client_per_channel_and_pool():
    """kombu's Redis channel built a redis-py client for every message it sent (0.7 M
    instructions, 7 % of an async submit). Ours keeps one while the channel's pool lasts."""
    from nanostudio import broker
    from nanostudio.celery import app

    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue("test-broker-one-client")
        channel: Any = queue.channel  # kombu's Redis channel, not the type stubs' base
        try:
            assert isinstance(queue.channel, broker.Channel)
            queue.put({"n": 1})
            first = channel._create_client()
            queue.put({"n": 2})
            assert channel._create_client() is first
            channel._disconnect_pools()  # what a fork or a reconnect does to the channel
            queue.put({"n": 3})
            assert channel._create_client() is not first
            assert channel._create_client().connection_pool is channel.pool
            received = [queue.get(timeout=5) for _ in range(3)]
            for message in received:
                message.ack()
            assert [message.payload["n"] for message in received] == [1, 2, 3]
        finally:
            channel.queue_delete("test-broker-one-client")
            queue.close()


@pytest.mark.services
def test_a_job_sent_while_the_broker_is_down_is_logged_not_raised():
    """enqueue runs after the job's commit: the job is accepted and charged, so a broker that
    cannot be reached is logged (the sweeper sends the job later), never an error answer."""
    send = (
        "from studio.models import Job; from studio.tasks import enqueue; "
        "enqueue(Job(kind='generate')); print('answered')"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", send],
        cwd=ROOT,
        env={**os.environ, "REDIS_BROKER_URL": "redis://127.0.0.1:1/0"},  # nothing listens
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    warning, answered = done.stdout.strip().splitlines()
    assert "job not sent, the sweeper will send it" in warning and "Connection refused" in warning
    assert answered == "answered"


# Sends a job on each line read, in a request named req-<line>, and prints the outcome.
_SENDER = """
import sys
from nanostudio.logging import request_id_var
from studio.models import Job
from studio.tasks import enqueue
for line in sys.stdin:
    request_id_var.set("req-" + line.strip())
    enqueue(Job(kind="generate"))
    print("sent", flush=True)
"""


@pytest.mark.services
def test_a_process_keeps_sending_jobs_across_a_broker_restart():
    """enqueue publishes with one producer for the process's life: a broker that restarts
    empty between two jobs costs the second one nothing (redis-py reconnects), and each
    message is Celery's, with the request's id for the worker's log lines."""
    import json

    import redis

    port = free_port()
    broker = start_redis(port)
    sender = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", _SENDER],
        cwd=ROOT,
        env={**os.environ, "REDIS_BROKER_URL": f"redis://127.0.0.1:{port}/0"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert sender.stdin and sender.stdout
    try:
        sent = []
        for n in (1, 2):
            sender.stdin.write(f"{n}\n")
            sender.stdin.flush()
            sent.append(sender.stdout.readline().strip())
            queued = redis.Redis(port=port).lpop("images")
            assert queued, f"job {n} is not in the queue: {sent}"
            message = json.loads(queued)
            assert message["headers"]["task"] == "studio.run_job"
            assert message["headers"]["nano_request_id"] == f"req-{n}"
            assert message["properties"]["delivery_info"]["routing_key"] == "images"
            if n == 1:  # the broker restarts, empty, under the process's connection
                stop_process(broker)
                broker = start_redis(port)
        assert sent == ["sent", "sent"]  # no "job not sent" warning came before either
    finally:
        sender.kill()
        sender.wait(timeout=10)
        stop_process(broker)
