from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal, cast

from ninja import Field, Query, Router, Schema

from apikeys.auth import ApiKeyAuth
from apikeys.models import ApiKey, Scope
from billing.periods import utc_today
from nanostudio.errors import validation_error
from nanostudio.http import ApiRequest
from nanostudio.schemas import Input, envelope, errors, ok
from usage import reports

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
