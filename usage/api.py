from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast

from django.urls import reverse
from ninja import Field, Query, Router
from pydantic import field_validator

from apikeys.auth import ApiKeyAuth
from apikeys.models import ApiKey, Scope
from billing.periods import utc_today
from nanostudio import keyset
from nanostudio.errors import ApiError, validation_error
from nanostudio.http import ApiRequest
from nanostudio.schemas import Input, Schema, envelope, errors, ok
from usage import inspector, reports, requestlog
from usage.models import UsageEvent

router = Router(tags=["usage"])

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
EARLIEST_DAY = date(2000, 1, 1)  # no usage predates it; bounds the day arithmetic


class UsageQuery(Input):
    from_: date | None = Field(
        None,
        alias="from",
        description="First UTC day (default: 29 days before `to`); from 2000-01-01, at most "
        "366 days before `to`.",
    )
    to: date | None = Field(
        None, description="Last UTC day, included (default: today); at the latest tomorrow."
    )
    granularity: Literal["day"] = "day"
    group_by: Literal["key", "endpoint"] = "key"


class DayOut(Schema):
    date: date
    requests: int
    errors: int
    credits: int
    status: dict[str, int] = Field(description='Requests per status class: "2xx", "4xx", "5xx".')


class GroupOut(Schema):
    key: dict[str, Any] | None = Field(None, description="With group_by=key: id, name, hint.")
    endpoint: str | None = Field(None, description='With group_by=endpoint: "POST /api/ocr".')
    requests: int
    errors: int
    credits: int
    days: list[DayOut] = Field(description="Only the days with requests.")


class TotalsOut(Schema):
    requests: int
    errors: int
    credits: int


class UsageOut(Schema):
    from_: date = Field(alias="from")
    to: date
    granularity: str
    group_by: str
    totals: TotalsOut
    days: list[DayOut] = Field(description="Every day of the range, empty days included.")
    groups: list[GroupOut]


def _day_out(day: date, counts: reports.Counts) -> dict[str, Any]:
    return {
        "date": day,
        "requests": counts.requests,
        "errors": counts.errors,
        "credits": counts.credits,
        "status": {f"{status_class}xx": n for status_class, n in counts.by_class.items()},
    }


@router.get(
    "",
    auth=ApiKeyAuth(Scope.USAGE_READ),
    response={200: envelope(UsageOut), **errors()},
    by_alias=True,
)
def get_usage(request: ApiRequest, query: Query[UsageQuery]) -> dict[str, Any]:
    """Your requests and credits per UTC day, in total and per key or per endpoint.

    Counts every API request made with one of your keys, errors included; up to date to the
    second. Ranges up to 366 days; days are UTC.
    """
    today = utc_today()
    last = query.to or today
    if not EARLIEST_DAY <= last <= today + timedelta(days=1):
        raise validation_error({"to": f"A UTC day from {EARLIEST_DAY} to tomorrow."})
    first = query.from_ or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if first < EARLIEST_DAY:
        raise validation_error({"from": f"A UTC day from {EARLIEST_DAY} on."})
    if first > last:
        raise validation_error({"from": "`from` is after `to`."})
    if (last - first).days >= MAX_RANGE_DAYS:
        raise validation_error({"from": f"At most {MAX_RANGE_DAYS} days per request."})
    by = "key_id" if query.group_by == "key" else "endpoint"
    rows = reports.daily(request.user.pk, first, last, by=by)
    total = reports.total(rows)
    per_group_days: dict[object, list[reports.Row]] = {}
    for row in rows:
        per_group_days.setdefault(row[1], []).append(row)
    keys = {}
    if by == "key_id":
        keys = {
            key.pk: {"id": key.pk, "name": key.name, "hint": key.hint}
            for key in ApiKey.objects.filter(user=request.user, pk__in=per_group_days)
        }
    groups = []
    for group, group_rows in per_group_days.items():
        counts = reports.total(group_rows)
        group_days = reports.per_day(group_rows, first, last)
        groups.append(
            {
                "key": keys.get(group) if by == "key_id" else None,
                "endpoint": group if by == "endpoint" else None,
                "requests": counts.requests,
                "errors": counts.errors,
                "credits": counts.credits,
                "days": [_day_out(day, c) for day, c in group_days.items() if c.requests],
            }
        )
    groups.sort(key=lambda group: -cast(int, group["requests"]))
    return ok(
        {
            "from": first,
            "to": last,
            "granularity": query.granularity,
            "group_by": query.group_by,
            "totals": {
                "requests": total.requests,
                "errors": total.errors,
                "credits": total.credits,
            },
            "days": [_day_out(day, c) for day, c in reports.per_day(rows, first, last).items()],
            "groups": groups,
        }
    )


# --- The request log ------------------------------------------------------------------------

requests_router = Router(tags=["requests"])


class RequestLogQuery(Input):
    from_: datetime | None = Field(
        None, alias="from", description="Requests at or after this time (ISO 8601; UTC if naive)."
    )
    to: datetime | None = Field(None, description="Requests before this time.")
    key_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="One of your keys, by id (a 64-bit integer)."
    )
    endpoint: str | None = Field(
        None, max_length=80, description='An operation as the log names it: "POST /api/ocr".'
    )
    status: str | None = Field(
        None,
        pattern=r"^([1-5]([xX]{2}|[0-9]{2}))?$",
        description='A status class ("2xx", "4xx", "5xx") or a status ("429").',
    )
    error_code: str | None = Field(
        None, max_length=40, description="An error code, e.g. RATE_LIMIT_EXCEEDED."
    )
    ip: str | None = Field(None, description="The caller's IP address.")
    q: str | None = Field(
        None,
        pattern=r"^([A-Za-z0-9._-]{8,64})?$",
        description="A request id (`req_…`, as `X-Request-Id` carried it) or a job id.",
    )
    cursor: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="`next_cursor` from the previous page, unchanged.",
    )
    limit: int = Field(50, ge=1, le=100)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        return requestlog.check_status(value) if value else None

    @field_validator("error_code")
    @classmethod
    def _error_code(cls, value: str | None) -> str | None:
        return requestlog.check_error_code(value) if value else None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return str(ipaddress.ip_address(value.strip())) if value else None

    @field_validator("q")
    @classmethod
    def _q(cls, value: str | None) -> str | None:
        return requestlog.check_search(value) if value else None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _iso_time(cls, value: Any) -> datetime | None:
        """ISO 8601 only (pydantic alone would take a number as a Unix time); UTC if naive."""
        if value is None:
            return None
        moment = datetime.fromisoformat(str(value))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class RequestOut(Schema):
    request_id: str
    created_at: datetime
    method: str
    endpoint: str = Field(description='The operation: "GET /api/jobs/{job_id}".')
    path: str = Field(description="The path and query string as called.")
    status: int
    error_code: str | None
    key_id: int
    previous_secret: bool = Field(
        description="Made with a rolled key's previous secret, during its grace period."
    )
    ip: str | None
    latency_ms: float
    credits: int = Field(description="Credits it cost (0 once its job was refunded).")
    job_id: uuid.UUID | None
    rate_limit: dict[str, int] | None = Field(
        description="The limit per minute and the burst left after the call."
    )
    server_timing: dict[str, float] = Field(description="Server-side steps, in milliseconds.")
    inspect_url: str = Field(description="The request inspector page (signed in).")


class LedgerOut(Schema):
    kind: str = Field(description="debit (the reserve) or refund.")
    amount: int
    reason: str
    created_at: datetime


class RequestDetailOut(RequestOut):
    ledger: list[LedgerOut] = Field(description="The credits the request moved for its job.")


class RequestListOut(Schema):
    requests: list[RequestOut]
    next_cursor: str | None


def _request_out(event: UsageEvent, request: ApiRequest) -> dict[str, Any]:
    return {
        "request_id": event.request_id,
        "created_at": event.created_at,
        "method": event.method,
        "endpoint": event.endpoint,
        "path": event.path,
        "status": event.status,
        "error_code": event.error_code or None,
        "key_id": event.key_id,
        "previous_secret": event.previous_secret,
        "ip": event.ip,
        "latency_ms": event.latency_ms,
        "credits": event.credits,
        "job_id": event.job_id,
        "rate_limit": {"limit": event.rate_limit, "remaining": event.rate_remaining or 0}
        if event.rate_limit
        else None,
        "server_timing": dict(inspector.timing_parts(event.server_timing)),
        "inspect_url": request.build_absolute_uri(
            reverse("usage:request", args=[event.request_id])
        ),
    }


@requests_router.get(
    "",
    auth=ApiKeyAuth(Scope.USAGE_READ),
    response={200: envelope(RequestListOut), **errors()},
)
def list_requests(request: ApiRequest, query: Query[RequestLogQuery]) -> dict[str, Any]:
    """Your API requests of the retention window, newest first, filtered like the request log
    page. Pass `next_cursor` back as `cursor` for the next page."""
    log = requestlog.LogFilter(
        since=query.from_,
        until=query.to,
        key_id=query.key_id,
        endpoint=query.endpoint or "",
        status=query.status or "",
        error_code=query.error_code or "",
        ip=query.ip or "",
        search=query.q or "",
    )
    try:
        rows, next_cursor = requestlog.page(request.user.pk, log, query.cursor, query.limit)
    except ValueError:
        raise keyset.bad_cursor() from None
    return ok(
        {"requests": [_request_out(event, request) for event in rows], "next_cursor": next_cursor}
    )


@requests_router.get(
    "/{request_id}",
    auth=ApiKeyAuth(Scope.USAGE_READ),
    response={200: envelope(RequestDetailOut), **errors(404)},
)
def get_request(request: ApiRequest, request_id: str) -> dict[str, Any]:
    """One request: what the log shows, and the ledger entries of the job it created. The
    latest, if your client sent the same `X-Request-Id` more than once."""
    event, _ = requestlog.find(request.user.pk, request_id[:64])
    if event is None:
        raise ApiError("NOT_FOUND", "No request of yours has this id.")
    detail = _request_out(event, request)
    detail["ledger"] = [
        {
            "kind": entry.kind,
            "amount": entry.amount,
            "reason": entry.reason,
            "created_at": entry.created_at,
        }
        for entry in inspector.ledger_entries(event)
    ]
    return ok(detail)
