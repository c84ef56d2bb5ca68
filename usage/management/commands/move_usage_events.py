"""`manage.py move_usage_events`: the Procfile's `usage` process."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection

from usage import metering, stream

logger = logging.getLogger("nanostudio.usage")


class Command(BaseCommand):
    help = (
        "Move answered requests' usage events from the Redis stream to PostgreSQL, every "
        "USAGE_MOVE_EVERY_MS, until stopped (SIGTERM or SIGINT); the events waiting then are "
        "moved before it exits. Any number may run, on any machines: they take turns."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if stream.events() is None:
            # Waits all the same: `make run` (honcho) stops every process when one exits.
            self.stdout.write("Embedded mode: events are written in the request; none to move.")
            stop.wait()
            return
        every_s = settings.USAGE_MOVE_EVERY_MS / 1000
        logger.info("moving usage events every %s ms", settings.USAGE_MOVE_EVERY_MS)
        while not stop.is_set():
            self._move()
            stop.wait(every_s)
        moved = self._move()  # the events answered while it was stopping
        logger.info("stopped; moved %s usage events on the way out", moved)

    def _move(self) -> int:
        try:
            return metering.move_waiting(most=None)
        except DatabaseError:
            logger.exception("usage events not moved: tried again in a moment")
            connection.close()  # a new connection next time (the database may have restarted)
            return 0
