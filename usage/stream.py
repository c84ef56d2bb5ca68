"""The usage events' Redis stream (production mode): answered requests' events wait here until
`usage.metering.move_waiting` moves them to PostgreSQL in batches.

Appending is one Redis command, where the event's own INSERT and commit in PostgreSQL were a
round trip and a WAL flush per request. The stream is on REDIS_USAGE_URL (REDIS_URL unless set);
so that no answered request's event is lost when that Redis restarts, it must keep what it is
sent on disk before it answers (`appendonly yes`, `appendfsync always`) and never evict
(`maxmemory-policy noeviction`): `manage.py check --deploy` reads its settings and says which
one is missing (usage.W001).
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from django.conf import settings

STREAM = settings.USAGE_STREAM
TIMEOUT_S = 0.5
# What a Redis holding events must be set to, so that an event it has taken survives a restart.
DURABLE = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


class EventStream:
    def __init__(self, url: str) -> None:
        import redis

        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )

    def append(self, payload: str) -> None:
        self._client.xadd(STREAM, {"e": payload})

    def waiting(self) -> int:
        """How many entries the stream holds (moved ones are trimmed soon after)."""
        return int(self._client.xlen(STREAM))

    def after(self, last_id: str, count: int) -> list[tuple[str, str]]:
        """Up to `count` entries newer than `last_id`, oldest first: (id, payload)."""
        answer: Any = self._client.xread({STREAM: last_id}, count=count)
        entries = answer[0][1] if answer else []
        return [(entry_id.decode(), fields[b"e"].decode()) for entry_id, fields in entries]

    def trim_through(self, last_id: str) -> None:
        """Delete the entries up to and including `last_id` (newer ones stay)."""
        ms, seq = last_id.split("-")
        self._client.xtrim(STREAM, minid=f"{ms}-{int(seq) + 1}", approximate=False)

    def settings_missing(self) -> dict[str, str]:
        """Of DURABLE, the settings this Redis does not have: {name: what it has}."""
        have: dict[str, str] = {}
        for name in (*DURABLE, "maxmemory"):
            have.update(cast(dict[str, str], self._client.config_get(name)))
        if have.get("maxmemory") == "0":
            have["maxmemory-policy"] = "noeviction"  # no limit: nothing is evicted
        return {
            name: have.get(name, "?") for name, want in DURABLE.items() if have.get(name) != want
        }


@cache
def events() -> EventStream | None:
    """The stream, or None in embedded mode (events go straight to the database there)."""
    return EventStream(settings.REDIS_USAGE_URL) if settings.REDIS_URL else None
