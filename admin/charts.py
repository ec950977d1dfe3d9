"""Charts as inline SVG, drawn on the server: no script, nothing from the internet, readable at 360 px.

Pure presentation: each function takes rows already computed by the core and returns SVG markup
that scales to its container (``viewBox``); labels are escaped.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from audio_lessons.reports import Table

COLOURS = ("#b5451b", "#2f6f73", "#d9a21b", "#6b4c9a", "#4f7f2f")
W, H, PAD = 600, 200, 28


def _svg(body: str, label: str, height: int = H) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" '
                  f'aria-label="{escape(label)}">{body}</svg>')


def _axis(top: float, height: int = H) -> str:
    return (f'<line x1="{PAD}" y1="{height - PAD}" x2="{W}" y2="{height - PAD}" class="axis"/>'
            f'<text x="2" y="14" class="tick">{top:g}</text>'
            f'<text x="2" y="{height - PAD}" class="tick">0</text>')


def stacked_days(table: Table, series_col: int, value_col: int) -> dict:
    """Per day, one bar stacked by series (channel or language): {"svg", "legend"}."""
    days: dict[str, dict[str, int]] = {}
    for row in table.rows:
        days.setdefault(row[0], {})[row[series_col]] = row[value_col]
    series = sorted({s for per in days.values() for s in per})
    colour = {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(series)}
    if not days:
        return {"svg": None, "legend": []}
    top = max(sum(per.values()) for per in days.values()) or 1
    step = (W - PAD) / len(days)
    parts = [_axis(top)]
    for i, (day, per) in enumerate(sorted(days.items())):
        y = H - PAD
        for s in series:
            h = (H - 2 * PAD) * per.get(s, 0) / top
            y -= h
            parts.append(f'<rect x="{PAD + i * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{colour[s]}"><title>{escape(day)} · '
                         f'{escape(str(s))}: {per.get(s, 0)}</title></rect>')
    first, last = min(days), max(days)
    parts.append(f'<text x="{PAD}" y="{H - 8}" class="tick">{escape(first)}</text>'
                 f'<text x="{W}" y="{H - 8}" class="tick" text-anchor="end">{escape(last)}</text>')
    return {"svg": _svg("".join(parts), table.title), "legend": [(s, colour[s]) for s in series]}


def bars(points: list[tuple[str, int]]) -> Markup | None:
    """Vertical bars with a label under each (hours of the day)."""
    if not any(v for _, v in points):
        return None
    top = max(v for _, v in points) or 1
    step = (W - PAD) / len(points)
    parts = [_axis(top)]
    for i, (label, value) in enumerate(points):
        h = (H - 2 * PAD) * value / top
        x = PAD + i * step
        parts.append(f'<rect x="{x:.1f}" y="{H - PAD - h:.1f}" width="{step - 2:.1f}" '
                     f'height="{h:.1f}" fill="{COLOURS[1]}"><title>{escape(label)}: {value}'
                     f'</title></rect>')
        if i % 3 == 0:
            parts.append(f'<text x="{x:.1f}" y="{H - 10}" class="tick">{escape(label)}</text>')
    return _svg("".join(parts), "horas")


def hbars(points: list[tuple[str, int]]) -> Markup | None:
    """Horizontal bars, one per row with its label (top lessons)."""
    points = [(label, value) for label, value in points if value]
    if not points:
        return None
    top = max(v for _, v in points)
    row = 26
    height = row * len(points) + 4
    parts = []
    for i, (label, value) in enumerate(points):
        w = (W - 60) * value / top
        y = i * row + 2
        parts.append(f'<rect x="0" y="{y}" width="{w:.1f}" height="{row - 6}" '
                     f'fill="{COLOURS[0]}" opacity="0.85"/>'
                     f'<text x="6" y="{y + row - 11}" class="bar-label">{escape(label[:48])}</text>'
                     f'<text x="{W - 4}" y="{y + row - 11}" class="tick" text-anchor="end">'
                     f'{value}</text>')
    return _svg("".join(parts), "lecciones más escuchadas", height)
