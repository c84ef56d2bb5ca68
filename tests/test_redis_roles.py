"""Redis by role: the broker, the cache, the limiter and the usage events each on the URL set
for it (each REDIS_URL unless set), as separate processes on separate machines would use them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from usage import stream

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent
ROLES = {
    "REDIS_BROKER_URL": 11,
    "REDIS_CACHE_URL": 12,
    "REDIS_LIMITER_URL": 13,
    "REDIS_USAGE_URL": 9,
}
USE_EACH = """
from django.core.cache import cache
from apikeys import ratelimit
from nanostudio.celery import app
from usage import stream
cache.set("roles-test", 1)
stream.events().append("[]")
ratelimit.check(ratelimit.Bucket("roles-test", 60, 10))
app.send_task("usage.roll_up")
"""


def test_the_broker_the_cache_the_limiter_and_the_usage_events_each_use_their_own_redis():
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    clients = {name: redis.Redis.from_url(f"{base}/{db}") for name, db in ROLES.items()}
    for client in clients.values():
        client.flushdb()
    env = {
        **os.environ,
        "DEBUG": "1",
        "REDIS_URL": f"{base}/10",
        **{name: f"{base}/{db}" for name, db in ROLES.items()},
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", USE_EACH],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    keys = {name: {k.decode() for k in client.keys("*")} for name, client in clients.items()}
    try:
        assert keys["REDIS_BROKER_URL"], "the task's queue is on the broker's Redis"
        assert not any("roles-test" in k for k in keys["REDIS_BROKER_URL"])
        cached = {k for k in keys["REDIS_CACHE_URL"] if "roles-test" in k}
        limited = {k for k in keys["REDIS_LIMITER_URL"] if "roles-test" in k}
        assert cached and limited and not cached & limited
        assert keys["REDIS_USAGE_URL"] == {stream.STREAM}
        assert not redis.Redis.from_url(f"{base}/10").keys("*")  # REDIS_URL itself: unused
    finally:
        for client in clients.values():
            client.flushdb()
