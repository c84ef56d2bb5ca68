"""The usage page (charts, burn-down, request log, CSV export) and the dashboard's sparkline."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from apikeys.models import ApiKey
from billing.credits import burn_down
from billing.periods import utc_today
from billing.views import billing_context
from nanostudio.errors import ERROR_CODES
from nanostudio.http import AuthedRequest
from usage import charts, inspector, reports, requestlog
from usage.models import UsageEvent

if TYPE_CHECKING:
    from accounts.models import User

RANGES_DAYS = (7, 30, 90)
RECENT_ROWS = 10  # on the usage page; the request log has them all
DEFAULT_RANGE_DAYS = 30


class KeyAndEndpoint(forms.Form):
    """The filters the usage page and the request log share: one of the user's keys, one of
    the API's operations."""

    key = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Key")
    endpoint = forms.ChoiceField(required=False, label="Endpoint")

    def __init__(self, user: User, data: QueryDict) -> None:
        super().__init__(data, label_suffix="")
        # The user's keys, loaded once for the choices, the key table and the log.
        self.keys = {key.pk: key for key in ApiKey.objects.filter(user=user)}
        key_field = cast(forms.TypedChoiceField, self.fields["key"])
        key_field.choices = [("", "All keys")] + [(pk, str(key)) for pk, key in self.keys.items()]
        endpoint_field = cast(forms.ChoiceField, self.fields["endpoint"])
        endpoint_field.choices = [("", "All endpoints")] + [
            (name, name) for name in reports.api_endpoints()
        ]


class UsageFilters(KeyAndEndpoint):
    days = forms.TypedChoiceField(
        choices=[(n, f"Last {n} days") for n in RANGES_DAYS], coerce=int, label="Range"
    )
    field_order = ["days", "key", "endpoint"]

    def __init__(self, user: User, data: QueryDict) -> None:
        if not data.get("days"):
            data = data.copy()
            data["days"] = str(DEFAULT_RANGE_DAYS)  # so the select shows the range in use
        super().__init__(user, data)


def _days(filters: dict[str, Any]) -> tuple[date, date]:
    """The first and last UTC day of the range the filters name."""
    last = utc_today()
    return last - timedelta(days=filters["days"] - 1), last


@lru_cache(maxsize=1024)  # a page names each of its days up to four times
def _day(day: date) -> str:
    return f"{day:%a %b %-d}"


def _requests_chart(
    days: dict[date, reports.Counts], total: reports.Counts, span: str
) -> dict[str, Any]:
    dates = list(days)
    series = [
        charts.Series(f"series-{status}xx", [days[day].by_class[status] for day in dates])
        for status in reports.STATUS_CLASSES
    ]
    labels = [
        f"{_day(day)}: {counts.requests:,} requests ({counts.by_class[2]:,} 2xx, "
        f"{counts.by_class[4]:,} 4xx, {counts.by_class[5]:,} 5xx)"
        for day, counts in days.items()
    ]
    summary = (
        f"Requests per day {span}, by status class: {total.requests:,} requests, "
        f"{total.errors:,} errors. The table below has each day."
    )
    return charts.bar_chart(dates, series, labels, chart_id="requests", summary=summary)


def _credits_chart(
    days: dict[date, reports.Counts], left: list[int | None], total: reports.Counts, span: str
) -> dict[str, Any]:
    """Credits used per day, with the credits left this period as a line where known."""
    dates = list(days)
    has_line = any(value is not None for value in left)
    labels = [
        f"{_day(day)}: {counts.credits:,} credits used"
        + (f", {left[i]:,} left at the end of the day" if left[i] is not None else "")
        for i, (day, counts) in enumerate(days.items())
    ]
    summary = f"Credits used per day {span}: {total.credits:,} in all" + (
        ", with the credits left this billing period as a line." if has_line else "."
    )
    return charts.bar_chart(
        dates,
        [charts.Series("series-credits", [days[day].credits for day in dates])],
        labels,
        line=left if has_line else None,
        chart_id="credits",
        summary=summary,
    )


def _key_rows(
    per_key: dict[object, reports.Counts], keys: dict[int, ApiKey], key_id: int | None
) -> list[dict[str, Any]]:
    """Each key's counts, busiest first (then oldest first); unfiltered, live keys without
    requests too, so every key is accounted for."""
    key_rows = [
        {"key": key, "counts": per_key[key.pk]}
        for key in sorted(
            (key for key in keys.values() if key.pk in per_key),
            key=lambda key: (-per_key[key.pk].requests, key.pk),
        )
    ]
    if key_id is None:
        key_rows += [
            {"key": key, "counts": reports.Counts()}
            for key in keys.values()
            if key.pk not in per_key and key.display_status == "active"
        ]
    return key_rows


NONE = "\N{EN DASH}"  # a table cell with no figure


# The day tables are built here, not in the template: 90 days of cells through the template
# engine cost more than everything else on the page. They hold dates and numbers only, so
# there is nothing to escape.
def _day_tables(days: dict[date, reports.Counts], left: list[int | None]) -> dict[str, Any]:
    requests_rows = "".join(
        f'<tr><th scope="row">{_day(day)}</th><td class="num">{c.requests:,}</td>'
        f'<td class="num">{c.by_class[2]:,}</td><td class="num">{c.by_class[4]:,}</td>'
        f'<td class="num">{c.by_class[5]:,}</td></tr>'
        for day, c in days.items()
    )
    credits_rows = "".join(
        f'<tr><th scope="row">{_day(day)}</th><td class="num">{c.credits:,}</td>'
        f'<td class="num">{NONE if left[i] is None else f"{left[i]:,}"}</td></tr>'
        for i, (day, c) in enumerate(days.items())
    )
    return {
        "requests_table_rows": mark_safe(requests_rows),  # noqa: S308 (dates and numbers)
        "credits_table_rows": mark_safe(credits_rows),  # noqa: S308 (dates and numbers)
    }


def _report(user: User, filters: dict[str, Any], keys: dict[int, ApiKey]) -> dict[str, Any]:
    first, last = _days(filters)
    days, per_key = reports.days_and_groups(
        user.pk, first, last, key_id=filters["key"], endpoint=filters["endpoint"] or None
    )
    total = reports.Counts()
    for counts in days.values():
        total.add_counts(counts)
    span = f"from {first:%b %-d} to {last:%b %-d}"
    left, forecast = burn_down(user, list(days))
    log = requestlog.LogFilter(key_id=filters["key"], endpoint=filters["endpoint"])
    recent, _ = requestlog.page(user.pk, log, limit=RECENT_ROWS)
    return {
        "first": first,
        "last": last,
        "total": total,
        "retention_days": settings.USAGE_RETENTION_DAYS,
        "requests_chart": _requests_chart(days, total, span),
        "credits_chart": _credits_chart(days, left, total, span),
        **_day_tables(days, left),
        "key_rows": _key_rows(per_key, keys, filters["key"]),
        "recent": recent,
        "recent_rows": _log_rows(recent, keys),
        "forecast": forecast,
    }


def _log_rows(events: list[UsageEvent], keys: dict[int, ApiKey]) -> str:
    """The request log's rows (see the table rows in _report for why they are built here)."""
    rows = []
    for event in events:
        key = keys.get(event.key_id)
        rows.append(
            (
                reverse("usage:request", args=[event.request_id]),
                event.request_id,
                f"{event.created_at:%b %-d, %H:%M:%S}",
                event.endpoint,
                format_html(
                    ' <a href="{}" class="small">job</a>',
                    reverse("studio:job", args=[event.job_id]),
                )
                if event.job_id
                else "",
                "badge-danger"
                if event.status >= 500
                else "badge-warning"
                if event.status >= 400
                else "badge-success",
                event.status,
                format_html(' <code class="small">{}</code>', event.error_code)
                if event.error_code
                else "",
                format_html('{} <code class="small">{}</code>', key.name, key.hint) if key else "",
                event.ip or NONE,
                f"{event.latency_ms:,.0f} ms",
            )
        )
    return format_html_join(
        "",
        '<tr><td class="nowrap"><a href="{}" title="Inspect {}">{}</a></td>'
        '<td data-label="Request"><code>{}</code>{}</td><td class="nowrap" data-label="Status">'
        '<span class="badge {}">{}</span>{}</td><td data-label="Key">{}</td>'
        '<td class="mono small" data-label="IP">{}</td><td class="num" data-label="Latency">{}</td>'
        "</tr>",
        rows,
    )


def usage_sparkline(user: User) -> dict[str, Any]:
    """The dashboard's small chart: requests per day over the last 30 days."""
    last = utc_today()
    first = last - timedelta(days=29)
    days = reports.per_day(reports.daily(user.pk, first, last, by=()), first, last)  # no groups
    total = sum(c.requests for c in days.values())
    errors = sum(c.errors for c in days.values())
    chart = charts.bar_chart(
        list(days),
        [
            charts.Series(f"series-{sc}xx", [c.by_class[sc] for c in days.values()])
            for sc in reports.STATUS_CLASSES
        ],
        [f"{d:%b %-d}: {c.requests:,} requests, {c.errors:,} errors" for d, c in days.items()],
        chart_id="sparkline",
        summary=f"Requests per day over the last 30 days: {total:,} requests, {errors:,} errors.",
        width=320,
        height=72,
        axes=False,
    )
    chart["total"], chart["errors"] = total, errors
    return chart


@login_required
@require_GET
@vary_on_headers("HX-Request")  # the page, or its partial for htmx
def usage_page(request: AuthedRequest) -> HttpResponse:
    user = request.user
    form = UsageFilters(user, request.GET)
    context = {"form": form, **billing_context(user)}
    status = 200
    if form.is_valid():
        context.update(_report(user, form.cleaned_data, form.keys))
        query = {k: v for k, v in request.GET.items() if k in form.fields and v}
        context["export_query"] = urlencode(query)
        log_query = {k: v for k, v in query.items() if k in ("key", "endpoint")}
        context["log_query"] = urlencode(log_query)
    else:
        status = 422
    template = "usage/usage.html#report" if request.htmx else "usage/usage.html"
    return render(request, template, context, status=status)


def _invalid_filters(form: forms.Form) -> HttpResponse:
    """A CSV export's answer to bad filters: 400, in words."""
    return HttpResponse(
        "Invalid filters: "
        + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()),
        status=400,
        content_type="text/plain",
    )


@login_required
def usage_export(request: AuthedRequest) -> HttpResponse:
    """The selected range as CSV: one row per day, key, endpoint and status class."""
    form = UsageFilters(request.user, request.GET)
    if not form.is_valid():
        return _invalid_filters(form)
    filters = form.cleaned_data
    first, last = _days(filters)
    rows = reports.daily(
        request.user.pk,
        first,
        last,
        by=("key_id", "endpoint"),
        key_id=filters["key"],
        endpoint=filters["endpoint"] or None,
    )
    keys = form.keys
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "date",
            "key_id",
            "key_name",
            "key_hint",
            "endpoint",
            "status_class",
            "requests",
            "credits",
            "avg_latency_ms",
        ]
    )
    for day, (key_id, endpoint), status_class, requests, credits, latency in rows:
        key = keys.get(key_id)
        writer.writerow(
            [
                day.isoformat(),
                key_id,
                key.name if key else "",
                key.hint if key else "",
                endpoint,
                f"{status_class}xx",
                requests,
                credits,
                f"{latency / requests:.1f}",
            ]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="nano-studio-usage-{first}-to-{last}.csv"'
    )
    return response


# --- The request log and the request inspector ---------------------------------------------

STATUS_CHOICES = [
    ("", "Any status"),
    ("2xx", "2xx (succeeded)"),
    ("4xx", "4xx (refused)"),
    ("5xx", "5xx (our side)"),
] + [
    (str(status), str(status)) for status in (400, 401, 402, 403, 404, 409, 422, 429, 500, 502, 503)
]


class RequestLogForm(KeyAndEndpoint):
    """The log's filters, all in the URL (a filtered view can be bookmarked and shared)."""

    # Naive input is read in the current time zone, UTC (settings.TIME_ZONE), as the log shows.
    since = forms.DateTimeField(required=False, label="From (UTC)")
    until = forms.DateTimeField(required=False, label="To (UTC)")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, label="Status")
    error_code = forms.ChoiceField(required=False, label="Error code")
    ip = forms.GenericIPAddressField(required=False, label="IP address")
    q = forms.CharField(required=False, max_length=64, label="Request or job id")

    def __init__(self, user: User, data: QueryDict) -> None:
        super().__init__(user, data)
        code_field = cast(forms.ChoiceField, self.fields["error_code"])
        code_field.choices = [("", "Any error code")] + [(code, code) for code in ERROR_CODES]
        for name in ("since", "until"):
            self.fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})

    def clean_q(self) -> str:
        value = str(self.cleaned_data["q"]).strip()
        if value:
            try:
                return requestlog.check_search(value)
            except ValueError as error:
                raise forms.ValidationError(str(error)) from None
        return value

    def log_filter(self) -> requestlog.LogFilter:
        data = self.cleaned_data
        return requestlog.LogFilter(
            since=data["since"],
            until=data["until"],
            key_id=data["key"],
            endpoint=data["endpoint"],
            status=data["status"],
            error_code=data["error_code"],
            ip=data["ip"] or "",
            search=data["q"],
        )


def _filter_query(request: AuthedRequest, form: forms.Form) -> str:
    return urlencode({k: v for k, v in request.GET.items() if k in form.fields and v})


@login_required
@require_GET
def request_log(request: AuthedRequest) -> HttpResponse:
    """Every request of the retention window, newest first, filtered, a cursor page at a time."""
    form = RequestLogForm(request.user, request.GET)
    context: dict[str, Any] = {"form": form, "retention_days": settings.USAGE_RETENTION_DAYS}
    if not form.is_valid():
        return render(request, "usage/requests.html", context, status=422)
    query = _filter_query(request, form)
    try:
        rows, next_cursor = requestlog.page(
            request.user.pk, form.log_filter(), request.GET.get("cursor") or None
        )
    except ValueError:
        context["bad_cursor"] = True
        return render(request, "usage/requests.html", context, status=400)
    context.update(
        {
            "rows": _log_rows(rows, form.keys),
            "count": len(rows),
            "query": query,
            "next_query": urlencode({**dict(request.GET.items()), "cursor": next_cursor})
            if next_cursor
            else "",
            "paged": bool(request.GET.get("cursor")),
            "filtered": bool(query),
        }
    )
    return render(request, "usage/requests.html", context)


CSV_HEADER = [
    "time_utc",
    "request_id",
    "method",
    "endpoint",
    "path",
    "status",
    "error_code",
    "key_id",
    "key_name",
    "ip",
    "latency_ms",
    "credits",
    "job_id",
]


@login_required
@require_GET
def request_log_export(request: AuthedRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered requests as CSV, one row per request, streamed a chunk at a time."""
    form = RequestLogForm(request.user, request.GET)
    if not form.is_valid():
        return _invalid_filters(form)
    keys = form.keys

    def row(event: UsageEvent) -> list[Any]:
        key = keys.get(event.key_id)
        return [
            event.created_at.isoformat(),
            event.request_id,
            event.method,
            event.endpoint,
            event.path,
            event.status,
            event.error_code,
            event.key_id,
            key.name if key else "",
            event.ip or "",
            f"{event.latency_ms:.1f}",
            event.credits,
            event.job_id or "",
        ]

    def lines() -> Iterator[str]:
        """The header, then one piece of text per chunk of events: one write per 2,000 rows
        rather than one per row."""
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(CSV_HEADER)
        for events in requestlog.chunks(request.user.pk, form.log_filter()):
            writer.writerows(map(row, events))
            yield text.getvalue()
            text.seek(0)
            text.truncate()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="nano-studio-requests.csv"'
    return response


@login_required
@require_GET
def request_detail(request: AuthedRequest, request_id: str) -> HttpResponse:
    """The inspector: one request's whole story. 404 for ids that are not the user's."""
    event, count = requestlog.find(request.user.pk, request_id)
    if event is None:
        raise Http404("No request of yours has this id.")
    key = ApiKey.objects.filter(pk=event.key_id, user=request.user).first()
    context = inspector.story(event, key)
    context["same_id_count"] = count
    context["error"] = ERROR_CODES.get(event.error_code)
    return render(request, "usage/request.html", context)
