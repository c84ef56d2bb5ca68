"""The usage charts: the server lays out and draws SVG bars and lines (`bar_chart(...)["svg"]`),
so a chart costs no script, works without JavaScript and arrives with the page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 720, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 44, 12, 26
TICKS = 4


@dataclass
class Series:
    css_class: str  # the fill colour, from app.css (.series-2xx, …)
    values: list[int]


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
    """Stacked bars per day, with an optional line on its own right-hand scale: `svg` is the
    chart drawn (`summary`, its text alternative, is its title), `line` the line's points,
    `columns` the number of days drawn."""
    left, right = (MARGIN_LEFT, MARGIN_RIGHT if line else 12) if axes else (0, 0)
    top, bottom = (MARGIN_TOP, MARGIN_BOTTOM) if axes else (2, 0)
    plot_w: float = width - left - right
    plot_h: float = height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    y_max = nice_ceiling(max(totals, default=0))
    step = plot_w / max(len(days), 1)
    gap = min(step * 0.2, 6)
    y_ticks = [
        (top + plot_h * (1 - i / TICKS), f"{y_max * i // TICKS:,}") for i in range(TICKS + 1)
    ]
    # Drawn here rather than in a template: a 90-day chart is a few hundred elements, which
    # Django's template engine renders about ten times slower. Every text is escaped or a number.
    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-summary" focusable="false">',
        f'<title id="{chart_id}-summary">{escape(summary)}</title>',
        # 4xx bars striped, 5xx dotted: told apart without their colours.
        f'<defs><pattern id="{chart_id}-4xx" width="4" height="4" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="4" height="4" fill="#f3d9bd"/>'
        f'<rect width="2" height="4" fill="#b45f06"/></pattern>'
        f'<pattern id="{chart_id}-5xx" width="4" height="4" patternUnits="userSpaceOnUse">'
        f'<rect width="4" height="4" fill="#f1d0f5"/><circle cx="2" cy="2" r="1.4" '
        f'fill="#a21caf"/></pattern></defs>',
    ]
    for y, label in y_ticks:
        parts.append(
            f'<line class="chart-grid" x1="{left}" x2="{width - right}" y1="{y:.2f}" y2="{y:.2f}"/>'
        )
        if axes:
            parts.append(
                f'<text class="chart-tick" x="{left - 6}" y="{y:.2f}" dy=".32em" '
                f'text-anchor="end">{label}</text>'
            )
    if axes:  # about six date labels, whatever the range
        every = max(1, math.ceil(len(days) / 6))
        parts += [
            f'<text class="chart-tick" x="{left + (i + 0.5) * step:.2f}" y="{height - 6}" '
            f'text-anchor="middle">{day:%b %-d}</text>'
            for i, day in enumerate(days)
            if i % every == 0
        ]
    patterned = {
        "series-4xx": f' fill="url(#{chart_id}-4xx)"',
        "series-5xx": f' fill="url(#{chart_id}-5xx)"',
    }
    bar_w = step - gap
    for index, tip in enumerate(tips):
        x = left + index * step
        tip = escape(tip)
        parts.append(
            f'<g class="chart-col" data-tip="{tip}"><title>{tip}</title>'
            f'<rect class="chart-hit" x="{x:.2f}" y="{top}" width="{step:.2f}" '
            f'height="{plot_h}"/>'
        )
        base = top + plot_h
        for s in series:
            if value := s.values[index]:
                h = plot_h * value / y_max
                base -= h
                parts.append(
                    f'<rect class="{s.css_class}" x="{x + gap / 2:.2f}" y="{base:.2f}" '
                    f'width="{bar_w:.2f}" height="{h:.2f}" rx="1.5"{patterned.get(s.css_class, "")}/>'
                )
        parts.append("</g>")
    points = ""
    if line is not None:
        line_max = nice_ceiling(max((v for v in line if v is not None), default=0))
        dots = [
            (left + (i + 0.5) * step, top + plot_h * (1 - v / line_max))
            for i, v in enumerate(line)
            if v is not None
        ]
        points = " ".join(f"{x:.2f},{y:.2f}" for x, y in dots)
        if points:
            parts.append(f'<polyline class="chart-line" points="{points}"/>')
            parts += [
                f'<circle class="chart-dot" cx="{x:.2f}" cy="{y:.2f}" r="3"/>' for x, y in dots
            ]
            parts += [
                f'<text class="chart-tick chart-tick-line" x="{width - right + 6}" y="{y:.2f}" '
                f'dy=".32em">{line_max * i // TICKS:,}</text>'
                for i, (y, _) in enumerate(y_ticks)
            ]
    parts.append("</svg>")
    return {
        "svg": mark_safe("".join(parts)),  # noqa: S308 (every text above is escaped or a number)
        "line": points or None,
        "columns": len(tips),
    }
