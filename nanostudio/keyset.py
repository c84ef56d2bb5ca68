"""Keyset paging for lists newest first: an opaque cursor names the last row a page showed,
and the next page is the rows strictly before it in (created_at, pk) order. Never OFFSET: a
page costs the same however deep, and rows added meanwhile neither repeat nor go missing."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from nanostudio.errors import ApiError, validation_error

M = TypeVar("M", bound=Model)
K = TypeVar("K")


def bad_cursor() -> ApiError:
    """The API's answer to a cursor it did not issue: 400 naming the field."""
    return validation_error({"cursor": "Use next_cursor from the previous page."})


def encode(created_at: datetime, pk: object) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode()


def decode(cursor: str, pk_type: Callable[[str], K]) -> tuple[datetime, K]:
    """The (created_at, pk) a cursor points after; ValueError for anything we did not issue."""
    created, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    created_at = datetime.fromisoformat(created)
    if created_at.tzinfo is None:
        raise ValueError("naive time")
    return created_at, pk_type(pk)


def before(rows: QuerySet[M], created_at: datetime, pk: Any) -> QuerySet[M]:
    """The rows after the cursor's row, newest first. `created_at <= c` is the index range;
    the OR only breaks ties on the same instant."""
    return rows.filter(created_at__lte=created_at).filter(
        Q(created_at__lt=created_at) | Q(pk__lt=pk)
    )


def page(
    rows: QuerySet[M], cursor: str | None, limit: int, pk_type: Callable[[str], Any]
) -> tuple[list[M], str | None]:
    """One page of `rows` (already ordered by -created_at, -pk) and the cursor for the next,
    None on the last. ValueError for a cursor we did not issue."""
    if cursor:
        rows = before(rows, *decode(cursor, pk_type))
    found = list(rows[: limit + 1])
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], encode(last.created_at, last.pk)  # type: ignore[attr-defined]
