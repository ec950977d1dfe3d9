"""Charts drawn on the server: no script, nothing from the internet, readable on a 360 px phone.

Pure presentation over rows the core computed. Bars are inline SVG stretched to the card's width
(``preserveAspectRatio="none"``, so there is no text inside it to distort); every label and number
is HTML around it, so it stays legible at any width.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from audio_lessons.reports import Table

COLOURS = ("#b5451b", "#2f6f73", "#d9a21b", "#6b4c9a", "#4f7f2f")  # .swatch.c0-c4 in panel.css
W, H = 1000, 100


def _svg(body: str, label: str) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {W} {H}" preserveAspectRatio="none" '
                  f'role="img" aria-label="{escape(label)}">{body}</svg>')


def stacked_days(table: Table, series_col: int, value_col: int) -> dict:
    """One bar a day stacked by series (channel or language): svg, legend, first, last, top."""
    days: dict[str, dict[str, int]] = {}
    for row in table.rows:
        days.setdefault(row[0], {})[row[series_col]] = row[value_col]
    if not days:
        return {"svg": None}
    series = sorted({s for per in days.values() for s in per})
    colour = {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(series)}
    top = max(sum(per.values()) for per in days.values()) or 1
    step = W / len(days)
    parts = []
    for i, (day, per) in enumerate(sorted(days.items())):
        y = float(H)
        for s in series:
            h = H * per.get(s, 0) / top
            y -= h
            parts.append(f'<rect x="{i * step:.2f}" y="{y:.2f}" width="{max(step * 0.85, 0.5):.2f}" '
                         f'height="{h:.2f}" fill="{colour[s]}"><title>{escape(day)} · '
                         f'{escape(str(s))}: {per.get(s, 0)}</title></rect>')
    return {"svg": _svg("".join(parts), table.title), "top": top, "first": min(days),
            "last": max(days), "legend": [(s, i) for i, s in enumerate(series)]}


def bars(points: list[tuple[str, int]]) -> dict | None:
    """Vertical bars (hours of the day): svg, top, and every third label."""
    if not any(v for _, v in points):
        return None
    top = max(v for _, v in points)
    step = W / len(points)
    parts = [f'<rect x="{i * step + step * 0.1:.2f}" y="{H - H * v / top:.2f}" '
             f'width="{step * 0.8:.2f}" height="{H * v / top:.2f}" fill="{COLOURS[1]}">'
             f'<title>{escape(label)}: {v}</title></rect>' for i, (label, v) in enumerate(points)]
    return {"svg": _svg("".join(parts), "horas"), "top": top,
            "labels": [label for i, (label, _) in enumerate(points) if i % 3 == 0]}


def hbars(points: list[tuple[str, int]]) -> list[tuple[str, int, float]]:
    """(label, value, percent of the largest) for HTML bars, largest first, zeros left out."""
    points = [(label, value) for label, value in points if value]
    top = max((v for _, v in points), default=1)
    return [(label, value, round(100 * value / top, 1)) for label, value in points]
