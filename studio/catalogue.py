"""The enabled templates, kept in each process's memory for the submit path and the worker,
which would otherwise spend queries on every job on a table that changes a few times a month.

A generation token in the shared cache says whether a process's copy is current: any change
to a template or its plan list (a deleted plan included) replaces the token. A process looks
at the token at most once every CHECK_EVERY_S (a cache read costs about what one of the two
queries did), so a change made elsewhere applies within that time everywhere, and at once in
the process that made it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction

from studio.models import Template

logger = logging.getLogger(__name__)
GENERATION_KEY = "studio:catalogue:generation"
CHECK_EVERY_S = 1.0


class _Copy:
    def __init__(self, generation: str, templates: dict[tuple[str, str], Template]) -> None:
        self.generation = generation
        self.templates = templates  # (type, lower-case name) → template, its plans prefetched
        self.by_id = {template.pk: template for template in templates.values()}
        self.checked_at = time.monotonic()


_copy: _Copy | None = None  # replaced whole, never changed in place but for checked_at
_load_lock = threading.Lock()


def find(name: str, template_type: str) -> Template | None:
    """The enabled template of this type and name (any case), or None. Shared between
    requests: read it, never change it."""
    return _copy_in_use().templates.get(_key(name, template_type))


def by_id(pk: int) -> Template | None:
    """The enabled template with this id, or None (disabled or gone). Shared, as `find`'s."""
    return _copy_in_use().by_id.get(pk)


def _copy_in_use() -> _Copy:
    copy = _copy
    if copy is None or time.monotonic() - copy.checked_at >= CHECK_EVERY_S:
        try:
            generation = _generation()
        except Exception:  # the cache is down: answer from the database, keep nothing
            logger.warning("template catalogue: cache unavailable, reading the database")
            return _Copy("", _load())
        copy = _current(generation)
    return copy


def changed(**_: Any) -> None:
    """A template or its plan list changed (or a plan went): every process reads them again.
    The token is replaced at once and again when the change commits, as a process reading
    between the two would have read the rows as they were."""
    forget()
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    transaction.on_commit(lambda: cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None))


def forget() -> None:
    """Drop this process's copy (tests, whose rolled-back rows send no signal)."""
    global _copy
    _copy = None


def _generation() -> str:
    generation = cache.get(GENERATION_KEY)
    if generation is None:  # first use, or the cache was emptied
        cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        generation = cache.get(GENERATION_KEY)
    return str(generation)


def _current(generation: str) -> _Copy:
    global _copy
    with _load_lock:  # one thread reads the table; the others wait for its copy
        if _copy is not None and _copy.generation == generation:
            _copy.checked_at = time.monotonic()
        else:
            # Read after the token: a change made meanwhile leaves a newer token behind.
            _copy = _Copy(generation, _load())
        return _copy


def _load() -> dict[tuple[str, str], Template]:
    templates: dict[tuple[str, str], Template] = {}
    for template in Template.objects.enabled().prefetch_related("plans"):
        templates.setdefault(_key(template.name, template.type), template)  # first in order
    return templates


def _key(name: str, template_type: str) -> tuple[str, str]:
    return (template_type.strip(), name.strip().lower())
