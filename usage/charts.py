"""The usage charts: the server lays out and draws SVG bars and lines (`bar_chart(...)["svg"]`),
so a chart costs no script, works without JavaScript and arrives with the page."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 44, 12, 26
TICKS = 4


@dataclass
class Series:
    css_class: str  # the fill colour, from app.css (.series-2xx, …)
    values: list[int]


@dataclass
class Column:
    x: float
    width: float
    tip: str
    segments: list[dict[str, Any]] = field(default_factory=list)


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 times 10^n at or above `value` (at least TICKS), for round ticks."""
    if value <= TICKS:
        return TICKS
    magnitude = 10 ** math.floor(math.log10(value / TICKS))
    for step in (1, 2, 5, 10):
        if step * magnitude * TICKS >= value:
            return int(step * magnitude * TICKS)
    return int(10 * magnitude * TICKS)  # pragma: no cover (the loop always returns)


def bar_chart(
    days: list[date],
    series: list[Series],
    tips: list[str],
    *,
    chart_id: str,
    summary: str,
    line: list[int | None] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    axes: bool = True,
) -> dict[str, Any]:
    """Stacked bars per day, with an optional line on its own right-hand scale; `svg` is the
    chart drawn, `summary` its text alternative."""
    left, right = (MARGIN_LEFT, MARGIN_RIGHT if line else 12) if axes else (0, 0)
    top, bottom = (MARGIN_TOP, MARGIN_BOTTOM) if axes else (2, 0)
    plot_w: float = width - left - right
    plot_h: float = height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    y_max = nice_ceiling(max(totals, default=0))
    step = plot_w / max(len(days), 1)
    gap = min(step * 0.2, 6)
    columns = []
    for index in range(len(days)):
        column = Column(x=round(left + index * step, 2), width=round(step, 2), tip=tips[index])
        base = top + plot_h
        for s in series:
            value = s.values[index]
            if value:
                h = plot_h * value / y_max
                base -= h
                column.segments.append(
                    {
                        "x": round(column.x + gap / 2, 2),
                        "y": round(base, 2),
                        "width": round(step - gap, 2),
                        "height": round(h, 2),
                        "class": s.css_class,
                    }
                )
        columns.append(column)
    chart: dict[str, Any] = {
        "width": width,
        "height": height,
        "plot_left": left,
        "plot_right": width - right,
        "plot_top": top,
        "plot_height": plot_h,
        "columns": columns,
        "y_ticks": [
            {"y": round(top + plot_h * (1 - i / TICKS), 2), "label": f"{y_max * i // TICKS:,}"}
            for i in range(TICKS + 1)
        ],
        # About six date labels, whatever the range.
        "x_labels": [
            {"x": round(left + (i + 0.5) * step, 2), "label": day.strftime("%b %-d")}
            for i, day in enumerate(days)
            if i % max(1, math.ceil(len(days) / 6)) == 0
        ],
        "line": None,
        "summary": summary,
    }
    if line is not None:
        line_max = nice_ceiling(max((v for v in line if v is not None), default=0))
        points = [
            f"{left + (i + 0.5) * step:.2f},{top + plot_h * (1 - v / line_max):.2f}"
            for i, v in enumerate(line)
            if v is not None
        ]
        chart["line"] = " ".join(points)
        chart["line_points"] = [point.split(",") for point in points]
        chart["line_ticks"] = [
            {"y": tick["y"], "label": f"{line_max * i // TICKS:,}"}
            for i, tick in enumerate(chart["y_ticks"])
        ]
    chart["svg"] = svg(chart, chart_id)
    return chart


def svg(chart: dict[str, Any], chart_id: str) -> SafeString:
    """The chart as inline SVG. Built here rather than in a template: a 90-day chart is a few
    hundred elements, which Django's template engine renders about ten times slower."""
    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {chart["width"]} {chart["height"]}" role="img" '
        f'aria-labelledby="{chart_id}-summary" focusable="false">',
        f'<title id="{chart_id}-summary">{escape(chart["summary"])}</title>',
        # 4xx bars striped, 5xx dotted: told apart without their colours.
        f'<defs><pattern id="{chart_id}-4xx" width="4" height="4" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="4" height="4" fill="#f3d9bd"/>'
        f'<rect width="2" height="4" fill="#b45f06"/></pattern>'
        f'<pattern id="{chart_id}-5xx" width="4" height="4" patternUnits="userSpaceOnUse">'
        f'<rect width="4" height="4" fill="#f1d0f5"/><circle cx="2" cy="2" r="1.4" '
        f'fill="#a21caf"/></pattern></defs>',
    ]
    patterned = {"series-4xx": f"url(#{chart_id}-4xx)", "series-5xx": f"url(#{chart_id}-5xx)"}
    left, right, axes = chart["plot_left"], chart["plot_right"], chart["plot_left"] > 0
    for tick in chart["y_ticks"]:
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{right}" y1="{tick["y"]}" y2="{tick["y"]}"/>'
        )
        if axes:
            parts.append(
                f'<text class="chart-tick" x="{left - 6}" y="{tick["y"]}" dy=".32em" '
                f'text-anchor="end">{tick["label"]}</text>'
            )
    if axes:
        parts += [
            f'<text class="chart-tick" x="{label["x"]}" y="{chart["height"] - 6}" '
            f'text-anchor="middle">{label["label"]}</text>'
            for label in chart["x_labels"]
        ]
    for column in chart["columns"]:
        tip = escape(column.tip)
        parts.append(
            f'<g class="chart-col" data-tip="{tip}"><title>{tip}</title>'
            f'<rect class="chart-hit" x="{column.x}" y="{chart["plot_top"]}" '
            f'width="{column.width}" height="{chart["plot_height"]}"/>'
        )
        parts += [
            f'<rect class="{s["class"]}" x="{s["x"]}" y="{s["y"]}" width="{s["width"]}" '
            f'height="{s["height"]}" rx="1.5"'
            + (f' fill="{patterned[s["class"]]}"' if s["class"] in patterned else "")
            + "/>"
            for s in column.segments
        ]
        parts.append("</g>")
    if chart["line"]:
        parts.append(f'<polyline class="chart-line" points="{chart["line"]}"/>')
        parts += [
            f'<circle class="chart-dot" cx="{x}" cy="{y}" r="3"/>' for x, y in chart["line_points"]
        ]
        parts += [
            f'<text class="chart-tick chart-tick-line" x="{right + 6}" y="{tick["y"]}" '
            f'dy=".32em">{tick["label"]}</text>'
            for tick in chart["line_ticks"]
        ]
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text above is escaped or a number)
