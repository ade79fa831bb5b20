"""The dashboard page at ``/``: totals, an inline SVG of articles per label over time, the latest
articles, drawn from the same store data the API serves (worker/api.py routes it). Every value
from the database is escaped; no JavaScript."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from classifiers import LABELS
from worker.query import EARLIEST
from worker.store import ArticleFilter

DASHBOARD_ARTICLES = 20
DASHBOARD_DAYS = 90  # the chart covers the 90 days before the newest article (a scan of them)

TEMPLATES = Path(__file__).resolve().parent / "templates"
# One colour per label, in the order of classifiers.LABELS (the one home of the slugs).
COLOURS = dict(zip(LABELS, ("#b03a2e", "#1f618d", "#7d3c98"), strict=True))
CHART_W, CHART_H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 260, 44, 16, 14, 34


def render_dashboard(
    stats: dict[str, Any], articles: list[dict[str, Any]], *, label: str | None
) -> str:
    """The page at ``/``: totals, an inline SVG of articles per label over time, the latest
    articles. Every value from the database is escaped."""
    by, series = _periods(stats.get("volume", []))
    per_label = ", ".join(
        f"<b>{stats['by_label'].get(name, 0):,}</b> {escape(name)}" for name in LABELS
    )
    legend = "".join(
        f'<span><span class="swatch" style="background:{COLOURS[name]}"></span>{name}</span>'
        for name in LABELS
    )
    nav = "".join(
        f'<a href="{href}"{" class=current" if current else ""}>{escape(text)}</a>'
        for text, href, current in [("all", "/", label is None)]
        + [(name, f"/?label={name}", label == name) for name in LABELS]
    )
    return Template((TEMPLATES / "dashboard.html").read_text(encoding="utf-8")).substitute(
        summary=f"<b>{stats['articles']:,}</b> articles stored: {per_label}",
        by=by,
        legend=f'<div class="legend">{legend}</div>',
        chart=_chart(series),
        nav=nav,
        rows="\n".join(_article_tr(a) for a in articles)
        or '<tr><td colspan="4" class="none">no articles yet</td></tr>',
    )


def _article_tr(article: dict[str, Any]) -> str:
    labels = (
        "".join(
            f'<span class="label" style="background:{COLOURS.get(name, "#566573")}" '
            f'data-label="{escape(name)}">{escape(name)} '
            f"{article['scores'].get(name, 0):.2f}</span>"
            for name in article["labels"]
        )
        or '<span class="none">none</span>'
    )
    title = escape(article["title"] or "(untitled)")
    link = f'<a href="/articles/{article["id"]}">{title}</a>'
    when = escape((article["published_at"] or article["ingested_at"] or "")[:16].replace("T", " "))
    return (
        f'      <tr data-id="{article["id"]}"><td>{when}</td><td>{link}</td>'
        f"<td>{escape(article['source'] or '')}</td><td>{labels}</td></tr>"
    )


def _periods(days: list[dict[str, Any]]) -> tuple[str, list[tuple[date, dict[str, int]]]]:
    """Day rows folded into days, weeks or months (whichever suits the span), with the empty
    periods in between filled with zeros so the time axis is even."""
    counted = {date.fromisoformat(row["day"]): row for row in days if row.get("day")}
    if not counted:
        return "week", []
    first, last = min(counted), max(counted)
    span = (last - first).days
    by = "day" if span <= 62 else "week" if span <= 2 * 366 else "month"

    def start(day: date) -> date:
        if by == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1) if by == "month" else day

    def step(day: date) -> date | None:  # None: the period after day is past year 9999
        try:
            if by == "month":
                return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
            return day + timedelta(days=7 if by == "week" else 1)
        except OverflowError:
            return None

    periods: dict[date, dict[str, int]] = {}
    cursor: date | None = start(first)
    while cursor is not None and cursor <= last:
        periods[cursor] = dict.fromkeys(LABELS, 0)
        cursor = step(cursor)
    for day, row in counted.items():
        totals = periods[start(day)]
        for name in LABELS:
            totals[name] += row.get(name, 0)
    return by, sorted(periods.items())


def _chart(series: list[tuple[date, dict[str, int]]]) -> str:
    """Lines of articles per label per period, one point (with a tooltip) per period."""
    if not series:
        return '<p class="none" id="volume-empty">nothing stored yet</p>'
    top = max(1, *(counts[name] for _, counts in series for name in LABELS))
    plot_w, plot_h = CHART_W - PAD_L - PAD_R, CHART_H - PAD_T - PAD_B
    n = len(series)

    def x(i: int) -> float:
        return PAD_L + (plot_w * (i + 0.5) / n)

    def y(value: int) -> float:
        return PAD_T + plot_h * (1 - value / top)

    parts = [
        f'<svg id="volume" viewBox="0 0 {CHART_W} {CHART_H}" role="img" '
        f'aria-label="articles per label over time" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in sorted({0, top // 2, top}):
        parts.append(
            f'<line x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e5e8e8"/><text x="{PAD_L - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}</text>'
        )
    for i in sorted({0, n // 2, n - 1}):
        parts.append(
            f'<text class="period" x="{x(i):.1f}" y="{CHART_H - 10}" '
            f'text-anchor="middle">{series[i][0].isoformat()}</text>'
        )
    for name in LABELS:
        colour = COLOURS[name]
        points = " ".join(f"{x(i):.1f},{y(c[name]):.1f}" for i, (_, c) in enumerate(series))
        parts.append(
            f'<polyline class="series" data-label="{name}" fill="none" stroke="{colour}" '
            f'stroke-width="2" points="{points}"/>'
        )
        for i, (period, counts) in enumerate(series):
            parts.append(
                f'<circle class="point" data-label="{name}" data-period="{period.isoformat()}" '
                f'data-count="{counts[name]}" cx="{x(i):.1f}" cy="{y(counts[name]):.1f}" r="3" '
                f'fill="{colour}"><title>{name}, {period.isoformat()}: {counts[name]}</title>'
                "</circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def dashboard_span(latest: datetime | None) -> ArticleFilter:
    """The chart's articles: the DASHBOARD_DAYS up to the newest article (all of them when the
    newest is that near the first day a datetime holds, or when nothing is stored)."""
    span = timedelta(days=DASHBOARD_DAYS)
    if latest is None or latest - EARLIEST < span:
        return ArticleFilter()
    return ArticleFilter(since=latest - span)
