"""System check for the usage events' Redis: it must keep what it takes (usage.stream)."""

from __future__ import annotations

from collections.abc import Sequence

from django.apps import AppConfig
from django.core.checks import CheckMessage, Info, Tags, Warning, register

from usage import stream


@register(Tags.database, deploy=True)
def check_usage_redis_keeps_events(
    app_configs: Sequence[AppConfig] | None, **kwargs: object
) -> list[CheckMessage]:
    """`manage.py check --deploy` warns when the Redis holding answered requests' usage events
    would lose them on a restart, or evict them when full."""
    events = stream.events()
    if events is None:
        return []  # embedded mode: events go straight to the database
    try:
        missing = events.settings_missing()
    except events.errors as error:  # unreachable, or CONFIG refused (some managed Redis)
        return [
            Info(
                f"Could not read the usage events' Redis settings: {error}.",
                hint="Make sure it runs with "
                + ", ".join(f"{name} {value}" for name, value in stream.DURABLE.items())
                + ".",
                id="usage.I001",
            )
        ]
    if not missing:
        return []
    return [
        Warning(
            "The Redis at REDIS_USAGE_URL may lose answered requests' usage events: "
            + ", ".join(f"{name} is {have}" for name, have in missing.items())
            + ".",
            hint="Run it with "
            + ", ".join(f"{name} {stream.DURABLE[name]}" for name in missing)
            + " (redis.conf, or CONFIG SET then CONFIG REWRITE), or point REDIS_USAGE_URL at "
            "a Redis that does.",
            id="usage.W001",
        )
    ]
