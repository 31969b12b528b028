"""Server-side SVG charts: vertical bars (grouped or stacked), horizontal bars, lines.

No JavaScript and nothing fetched from elsewhere: each chart is a ``<figure>`` holding an inline
SVG with ``role="img"``, a ``<title>`` and a ``<desc>`` (what a screen reader announces), a
``<title>`` on every bar and point (the tooltip), an HTML legend, and the same numbers as a
``<table>`` in a ``<details>`` (the fallback for anyone the picture does not serve). Colours are the
Okabe–Ito palette, distinguishable with the common colour-vision deficiencies. Every text is
escaped by ``markupsafe``; the callers pass plain strings.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

__all__ = ["PALETTE", "bar_chart", "hbar_chart", "line_chart", "nice_ticks"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D1F", "#6E7781")
Series = Sequence[tuple[str, Sequence[float | None]]]
Fmt = Callable[[float], str]
_ids = itertools.count(1)
_W, _H, _L, _R, _T, _B = 680, 260, 48, 12, 14, 44  # size and margins (left, right, top, bottom)


def _num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def pct(v: float) -> str:
    """0.1234 -> ``12.3%``."""
    return f"{v * 100:.1f}%"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and evenly spaced round values up to at least ``top`` (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _open(kind: str, title: str, desc: str, width: int, height: int) -> list[str]:
    uid = f"ch{next(_ids)}"
    head = (f'<svg class="chart-svg" data-chart="{kind}" role="img" aria-labelledby="{uid}t {uid}d" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{uid}t">{escape(title)}</title><desc id="{uid}d">{escape(desc)}</desc>')
    return [head]


def _axis(parts: list[str], ticks: list[float], y: Callable[[float], float], fmt: Fmt, width: int) -> None:
    for t in ticks:
        yy = y(t)
        parts.append(f'<line class="grid" x1="{_L}" x2="{width - _R}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                     f'<text class="tick" x="{_L - 6}" y="{yy + 4:.1f}" text-anchor="end">{escape(fmt(t))}</text>')


def _xlabels(parts: list[str], categories: Sequence[str], x: Callable[[int], float], height: int) -> None:
    every = max(1, math.ceil(len(categories) / 10))  # at most ~10 labels, so they never overlap
    for i, label in enumerate(categories):
        if i % every == 0 or (i == len(categories) - 1 and len(categories) <= 12):
            parts.append(f'<text class="tick" x="{x(i):.1f}" y="{height - _B + 16}" text-anchor="middle">'
                         f'{escape(_short(label))}</text>')


def _short(label: str) -> str:
    return label[5:] if len(label) == 10 and label[4] == "-" and label[7] == "-" else label  # 2026-03-02 -> 03-02


def _figure(svg: str, *, title: str, series: Series, categories: Sequence[str], table_label: str,
            fmt: Fmt, note: str = "") -> Markup:
    legend = "".join(f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
                     f'{escape(name)}</li>' for i, (name, _v) in enumerate(series)) if len(series) > 1 else ""
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name, _v in series)
    rows = "".join(f'<tr><th scope="row">{escape(cat)}</th>'
                   + "".join(f"<td>{'' if v[i] is None else escape(fmt(v[i]))}</td>" for _n, v in series)  # type: ignore[arg-type]
                   + "</tr>" for i, cat in enumerate(categories))
    # S704: every text interpolated above and below went through escape(); the rest is our own markup.
    return Markup(  # noqa: S704
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{svg}'
        + (f'<ul class="legend">{legend}</ul>' if legend else "")
        + (f'<p class="chart-note">{escape(note)}</p>' if note else "")
        + f'<details class="chart-data"><summary>{escape(table_label)}</summary><div class="scroll"><table>'
        f'<thead><tr><th scope="col"></th>{head}</tr></thead><tbody>{rows}</tbody></table></div></details></figure>')


def bar_chart(*, title: str, desc: str, categories: Sequence[str], series: Series, table_label: str,
              stacked: bool = False, fmt: Fmt = _num, marker: tuple[int, str] | None = None,
              width: int = _W, height: int = _H, note: str = "") -> Markup:
    """Vertical bars per category, one colour per series (side by side, or ``stacked``).

    ``marker`` = (category index, label) draws a dashed line there, e.g. a cap.
    """
    values = [[v or 0.0 for v in vals] for _n, vals in series]
    top = max([sum(col) for col in zip(*values, strict=True)] if stacked and values else
              [v for vals in values for v in vals] or [0.0])
    ticks = nice_ticks(top)
    plot_h = height - _T - _B
    band = (width - _L - _R) / max(len(categories), 1)
    y = lambda v: _T + plot_h * (1 - v / ticks[-1])  # noqa: E731
    x = lambda i: _L + band * (i + 0.5)  # noqa: E731
    parts = _open("bar", title, desc, width, height)
    _axis(parts, ticks, y, fmt, width)
    inner = band * 0.8
    for i, cat in enumerate(categories):
        base = 0.0
        for k, (name, _v) in enumerate(series):
            v = values[k][i]
            w = inner if stacked else inner / len(series)
            left = _L + band * i + band * 0.1 + (0 if stacked else w * k)
            lo, hi = (base, base + v) if stacked else (0.0, v)
            if v > 0:
                parts.append(f'<rect class="bar" data-series="{escape(name)}" data-value="{v:g}" x="{left:.1f}" '
                             f'y="{y(hi):.1f}" width="{max(w - 1, 1):.1f}" height="{y(lo) - y(hi):.1f}" '
                             f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(cat)} · {escape(name)}: '
                             f'{escape(fmt(v))}</title></rect>')
            base += v if stacked else 0
    if marker is not None:
        mx = _L + band * marker[0] + band * 0.95
        parts.append(f'<line class="marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{_T}" y2="{height - _B}"/>'
                     f'<text class="marker-label" x="{mx - 4:.1f}" y="{_T + 10}" text-anchor="end">'
                     f'{escape(marker[1])}</text>')
    _xlabels(parts, categories, x, height)
    parts.append(f'<line class="axis" x1="{_L}" x2="{width - _R}" y1="{y(0):.1f}" y2="{y(0):.1f}"/></svg>')
    return _figure("".join(parts), title=title, series=series, categories=categories, table_label=table_label,
                   fmt=fmt, note=note)


def line_chart(*, title: str, desc: str, categories: Sequence[str], series: Series, table_label: str,
               fmt: Fmt = _num, width: int = _W, height: int = _H, note: str = "") -> Markup:
    """One line with a point per category for each series; ``None`` values break the line."""
    vals = [v for _n, vs in series for v in vs if v is not None]
    ticks = nice_ticks(max(vals or [0.0]))
    plot_h = height - _T - _B
    step = (width - _L - _R) / max(len(categories) - 1, 1)
    y = lambda v: _T + plot_h * (1 - v / ticks[-1])  # noqa: E731
    x = lambda i: _L + step * i if len(categories) > 1 else (width + _L - _R) / 2  # noqa: E731
    parts = _open("line", title, desc, width, height)
    _axis(parts, ticks, y, fmt, width)
    for k, (name, values) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        run: list[str] = []
        for i, v in enumerate([*values, None]):
            if v is None:
                if len(run) > 1:
                    parts.append(f'<polyline class="line" fill="none" stroke="{colour}" points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{x(i):.1f},{y(v):.1f}")
        for i, v in enumerate(values):
            if v is not None:
                parts.append(f'<circle class="point" data-series="{escape(name)}" data-value="{v:g}" '
                             f'cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"><title>'
                             f'{escape(categories[i])} · {escape(name)}: {escape(fmt(v))}</title></circle>')
    _xlabels(parts, categories, x, height)
    parts.append(f'<line class="axis" x1="{_L}" x2="{width - _R}" y1="{y(0):.1f}" y2="{y(0):.1f}"/></svg>')
    return _figure("".join(parts), title=title, series=series, categories=categories, table_label=table_label,
                   fmt=fmt, note=note)


def hbar_chart(*, title: str, desc: str, items: Sequence[tuple[str, float, str | None]], table_label: str,
               value_label: str, fmt: Fmt = _num, label_width: int = 270) -> Markup:
    """Horizontal bars, one per ``(label, value, href)``; a bar with an ``href`` is a link (drill-down)."""
    row, gap = 22, 6
    height = _T + len(items) * (row + gap) + 24
    top = nice_ticks(max([v for _l, v, _h in items] or [0.0]))[-1]
    width = _W - label_width - _R - 40
    parts = _open("hbar", title, desc, _W, height)
    for i, (label, v, href) in enumerate(items):
        yy = _T + i * (row + gap)
        w = width * (v / top) if top else 0
        bar = (f'<rect class="bar" data-series="{escape(label)}" data-value="{v:g}" x="{label_width}" y="{yy}" '
               f'width="{max(w, 1):.1f}" height="{row}" fill="{PALETTE[0]}"><title>{escape(label)}: '
               f'{escape(fmt(v))}</title></rect><text class="tick" x="{label_width - 8}" y="{yy + 15}" '
               f'text-anchor="end">{escape(label)}</text><text class="value" x="{label_width + w + 6:.1f}" '
               f'y="{yy + 15}">{escape(fmt(v))}</text>')
        parts.append(f'<a href="{escape(href)}">{bar}</a>' if href else bar)
    parts.append("</svg>")
    return _figure("".join(parts), title=title, series=[(value_label, [v for _l, v, _h in items])],
                   categories=[label for label, _v, _h in items], table_label=table_label, fmt=fmt)
