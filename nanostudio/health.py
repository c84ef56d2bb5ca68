"""`/readyz`: may this process take traffic? The database, every Redis it uses and the job
file storage (the bucket, or the local folder), checked cheaply and at most every READYZ_CACHE_S seconds per process (a load
balancer polling each replica every second costs each service one check per few seconds).
`/healthz` stays the bare liveness answer: a process that answers it is alive, ready or not."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

READYZ_CACHE_S = 5
CHECK_TIMEOUT_S = 1
_lock = threading.Lock()
_last: tuple[float, dict[str, str]] | None = None


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except DatabaseError as error:
        return f"down: {str(error).strip().splitlines()[0][:200]}"


def _redis() -> str:
    """Every Redis URL this process uses (by role: broker, cache, limiter, usage), once each."""
    import redis

    urls = {
        settings.REDIS_BROKER_URL,
        settings.REDIS_CACHE_URL,
        settings.REDIS_LIMITER_URL,
        settings.REDIS_USAGE_URL,
    }
    for url in sorted(urls):
        try:
            redis.Redis.from_url(
                url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S
            ).ping()
        except redis.RedisError as error:
            where = url.rsplit("@", 1)[-1]  # never a password
            return f"down: {where}: {error}"
    return "ok"


def _storage() -> str:
    """The job files' bucket (one HEAD request), or their local folder."""
    from django.core.files.storage import storages

    files: Any = storages["jobs"]
    bucket = getattr(files, "bucket_name", None)
    if bucket:
        try:
            files.connection.meta.client.head_bucket(Bucket=bucket)
        except Exception as error:  # botocore's errors: no bucket, no access, unreachable
            return f"down: bucket {bucket}: {str(error)[:200]}"
        return "ok"
    media = Path(settings.MEDIA_ROOT)
    try:
        media.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"down: {media}: {error.strerror}"
    return "ok" if os.access(media, os.W_OK) else f"down: {media} is not writable"


def checks() -> dict[str, str]:
    results = {"database": _database(), "storage": _storage()}
    if settings.REDIS_URL:
        results["redis"] = _redis()
    return results


def readyz(request: HttpRequest) -> JsonResponse:
    global _last
    with _lock:
        if _last is None or time.monotonic() - _last[0] >= READYZ_CACHE_S:
            _last = (time.monotonic(), checks())
        results = _last[1]
    down = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "unavailable" if down else "ok", "down": down, "checks": results}
    response = JsonResponse(body, status=503 if down else 200)
    if down:
        response["Retry-After"] = str(READYZ_CACHE_S)
    response["Cache-Control"] = "no-store"
    return response
