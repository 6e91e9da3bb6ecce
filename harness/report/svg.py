"""Charts as inline SVG strings: no chart library, no CDN, readable from file://.

Only numbers, fixed words and colours from code go into attributes; every text from data (a
point's tooltip, a leaderboard row's label) is escaped, without bidirectional controls.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

from harness.kinds import NEUTRAL_COLOUR

COLOURS = {"green": "#2e9d4f", "orange": "#e8930c", "red": "#d64545"}
# Bidirectional controls cannot be isolated in an SVG tooltip: they are dropped there.
BIDI_CHARS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
BIDI_CONTROLS = dict.fromkeys(map(ord, BIDI_CHARS))
BIDI_PATTERN = re.compile(f"[{BIDI_CHARS}]")


def nice_ceiling(value: float) -> float:
    """The next 'round' axis end above value: 1, 2, 2.5, 5 x 10^k."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def scatter(truth, guess, colour, ids=None, *, size=460, pad=52) -> Markup:
    """Truth (x) vs prediction (y) with the y = x line; points past the axis sit on its edge."""
    truth, guess = np.asarray(truth, float), np.asarray(guess, float)
    top = nice_ceiling(max(float(truth.max(initial=1)), min(float(guess.max(initial=1)),
                                                             1.5 * float(truth.max(initial=1)))))
    plot = size - pad - 26          # room on the right for the last tick label
    def sx(v): return pad + plot * min(max(v, 0.0), top) / top
    def sy(v): return 16 + plot - plot * min(max(v, 0.0), top) / top
    parts = [f'<svg class="scatter" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
             f'role="img" aria-label="truth vs prediction, {len(truth)} items" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{pad}" y="16" width="{plot}" height="{plot}" class="plot-bg"/>']
    for k in range(6):
        v = top * k / 5
        x, y = sx(v), sy(v)
        parts.append(f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{16 + plot}" class="grid"/>'
                     f'<line x1="{pad}" y1="{y:.1f}" x2="{pad + plot}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{16 + plot + 16}" class="tick" text-anchor="middle">${v:,.0f}</text>'
                     f'<text x="{pad - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">${v:,.0f}</text>')
    parts.append(f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(top):.1f}" y2="{sy(top):.1f}" class="identity"/>')
    parts.append(f'<text x="{pad + plot / 2}" y="{size - 4}" class="axis" text-anchor="middle">true price</text>'
                 f'<text x="14" y="{16 + plot / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 14 {16 + plot / 2})">predicted price</text>')
    xs = pad + plot * np.clip(truth, 0.0, top) / top
    ys = 16 + plot - plot * np.clip(guess, 0.0, top) / top
    if ids is None:
        ids = [""] * len(truth)
    else:
        ids = [html.escape(str(i)) for i in ids]
        if BIDI_PATTERN.search("".join(ids)):       # rare: only then pay for a pass per id
            ids = [i.translate(BIDI_CONTROLS) for i in ids]
    kinds = [c if c in COLOURS else "red" for c in colour]      # class names from a fixed set only
    parts += [f'<circle class="pt pt-{c}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{i}: truth ${t:,.2f}, '
              f'guess ${g:,.2f}</title></circle>'
              for x, y, t, g, c, i in zip(xs.tolist(), ys.tolist(), truth.tolist(), guess.tolist(), kinds, ids)]
    parts.append("</svg>")
    return Markup("".join(parts))


def mae_bars(variants, *, width=460, bar=26) -> Markup:
    """Horizontal MAE bars with their 95% CI whiskers, one per variant: [(name, metrics), ...]."""
    top = nice_ceiling(max((m.get("mae_ci_high") or m["mae"]) for _, m in variants))     # displayed fields
    left, plot = 110, width - 110 - 70
    height = 20 + bar * len(variants)
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for k, (name, m) in enumerate(variants):
        y = 8 + k * bar
        w = plot * m["mae"] / top
        parts.append(f'<text x="{left - 8}" y="{y + bar / 2 + 2}" class="tick" text-anchor="end">{escape(name)}</text>'
                     f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{bar - 10}" class="bar"/>')
        if m.get("mae_ci_low") is not None:
            x1, x2 = left + plot * m["mae_ci_low"] / top, left + plot * m["mae_ci_high"] / top
            parts.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y + bar / 2 - 1}" y2="{y + bar / 2 - 1}" '
                         f'class="whisker"/>')
        parts.append(f'<text x="{left + plot + 6}" y="{y + bar / 2 + 2}" class="tick">${m["mae"]:,.2f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- the leaderboard chart: one bar per ranked row ---------------------------------------------
HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
REFERENCE_LINES = ("human", "frontier")     # the only class names a reference line takes
LABEL_CHARS = 38


@dataclass(frozen=True)
class Bar:
    """One row of the chart. `colour` comes from code (the kinds table), never from data."""

    label: str
    value: float
    text: str                               # the value as the table writes it
    low: float | None = None                # the 95% CI, if the row has one
    high: float | None = None
    colour: str = NEUTRAL_COLOUR
    note: str = ""                          # for the tooltip: the row's kind


@dataclass(frozen=True)
class RefLine:
    group: str                              # one of REFERENCE_LINES
    caption: str                            # e.g. "human $126.55"
    value: float
    label: str = ""                         # the row it stands for (tooltip)


def _plain(text) -> str:
    """Text for SVG: escaped, without bidirectional controls (an SVG <text> cannot isolate them)."""
    return str(escape(str(text).translate(BIDI_CONTROLS)))


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = str(text).translate(BIDI_CONTROLS)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _axis_top(bars: list[Bar], lines: list[RefLine]) -> float:
    """The axis end: every bar, whisker and line, but one absurd row (a $170,000 guess) does not
    squash the others: bars past 3x the median are drawn to the edge, broken."""
    far = max((b.high if b.high is not None else b.value for b in bars), default=0.0)
    cap = 3 * float(np.median([b.value for b in bars])) if bars else 0.0
    return nice_ceiling(max([min(far, cap) if cap > 0 else far] + [line.value for line in lines]))


def leaderboard_chart(bars: list[Bar], lines: list[RefLine], legend: list[tuple[str, str]], *, axis: str = "",
                      width: int = 760, row: int = 20) -> Markup:
    """Horizontal bars, best first, with 95% CI whiskers, reference lines and a legend of colours."""
    left, right, head = 262, 78, 34
    plot = width - left - right
    top = _axis_top(bars, lines)
    bottom = head + row * len(bars)
    per_line = max(1, (width - 16) // 190)
    height = bottom + 40 + 18 * math.ceil(len(legend) / per_line)

    def sx(v: float) -> float:
        return left + plot * min(max(v, 0.0), top) / top

    parts = [f'<svg class="leaderboard" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{len(bars)} rows by {_plain(axis)}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{left}" y="{head - 4}" width="{plot}" height="{bottom - head + 8}" class="plot-bg"/>']
    for k in range(6):
        x = sx(top * k / 5)
        parts.append(f'<line x1="{x:.1f}" y1="{head - 4}" x2="{x:.1f}" y2="{bottom + 4}" class="grid"/><text '
                     f'x="{x:.1f}" y="{bottom + 18}" class="tick" text-anchor="middle">${top * k / 5:,.0f}</text>')
    parts.append(f'<text x="{left + plot / 2}" y="{bottom + 34}" class="axis" text-anchor="middle">'
                 f'{_plain(axis)}</text>')
    for n, b in enumerate(bars):
        parts.append(_bar(b, head + n * row, row, sx, clipped=b.value > top))
    for n, line in enumerate(lines):
        x, y = sx(line.value), 12 + 13 * n
        group = line.group if line.group in REFERENCE_LINES else "other"
        anchor, dx = ("start", 4) if x < left + 0.6 * plot else ("end", -4)
        parts.append(f'<g class="lb-ref-group"><title>{_plain(line.label or line.caption)}</title>'
                     f'<line x1="{x:.1f}" y1="{y - 9}" x2="{x:.1f}" y2="{bottom + 4}" class="lb-ref lb-ref-{group}"/>'
                     f'<text x="{x + dx:.1f}" y="{y}" class="tick lb-ref-label" text-anchor="{anchor}">'
                     f'{_plain(line.caption)}</text></g>')
    for n, (text, colour) in enumerate(legend):
        x, y = 8 + 190 * (n % per_line), bottom + 50 + 18 * (n // per_line)
        parts.append(f'<g class="lb-legend"><rect x="{x}" y="{y - 10}" width="12" height="12" '
                     f'fill="{_colour(colour)}"/><text x="{x + 17}" y="{y}" class="tick">{_plain(_short(text, 28))}'
                     f'</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _colour(colour) -> str:
    return colour if isinstance(colour, str) and HEX_COLOUR.fullmatch(colour) else NEUTRAL_COLOUR


def _bar(b: Bar, y: float, row: int, sx, *, clipped: bool) -> str:
    """One row: its label, bar, whisker (if it has a CI) and value, with the full label as tooltip."""
    left, mid = sx(0.0), y + row / 2
    ci = f", 95% CI ${b.low:,.2f} – ${b.high:,.2f}" if b.low is not None and b.high is not None else ""
    parts = [f'<g class="lb-row"><title>{_plain(b.label)} · {_plain(b.note)} · {_plain(b.text)}{ci}</title>'
             f'<text x="{left - 8}" y="{mid + 4}" class="tick lb-label" text-anchor="end">{_plain(_short(b.label))}'
             f'</text><rect x="{left}" y="{y + 3}" width="{sx(b.value) - left:.1f}" height="{row - 6}" '
             f'fill="{_colour(b.colour)}" class="lb-bar"/>']
    if clipped:             # past the axis end: a break near the end says so
        x = sx(b.value) - 10
        parts.append(f'<path d="M{x:.1f} {y + 2}l4 {row - 4}M{x + 4:.1f} {y + 2}l4 {row - 4}" class="lb-break"/>')
    if ci:
        x1, x2 = sx(b.low), sx(b.high)
        parts.append(f'<path d="M{x1:.1f} {mid}H{x2:.1f}M{x1:.1f} {mid - 4}V{mid + 4}M{x2:.1f} {mid - 4}'
                     f'V{mid + 4}" class="lb-whisker"/>')
    value_x = sx(float("inf")) + 6          # the value column, right of the plot
    parts.append(f'<text x="{value_x:.1f}" y="{mid + 4}" class="tick">{_plain(b.text)}</text></g>')
    return "".join(parts)


# --- a fine-tune's training curve: lines over steps ----------------------------------------------
CURVE_CLASSES = ("train", "eval")           # the only class names a curve's series takes


def curve_chart(series: list[tuple[str, str, list[tuple[float, float]]]], *, y_label: str, money: bool = False,
                marker: float | None = None, width: int = 460, height: int = 230) -> Markup:
    """Lines of (step, value) per series, from 0 to a round top (an evaluation's points are dots
    too), and a dashed vertical line at step `marker` (the checkpoint a run evaluated)."""
    left, top_pad, plot_w, plot_h = 58, 22, width - 58 - 16, height - 22 - 44
    points = [p for _, _, ps in series for p in ps]
    x_top = nice_ceiling(max([x for x, _ in points] + [marker or 0, 1]))
    y_top = nice_ceiling(max([y for _, y in points] + [0.0]))

    def sx(v): return left + plot_w * min(max(v, 0.0), x_top) / x_top
    def sy(v): return top_pad + plot_h - plot_h * min(max(v, 0.0), y_top) / y_top
    def tick(v): return f"${v:,.0f}" if money else f"{v:,.3g}"

    parts = [f'<svg class="curve" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{_plain(y_label)} by training step" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>']
    for k in range(6):
        x, y = sx(x_top * k / 5), sy(y_top * k / 5)
        parts.append(f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" class="grid"/>'
                     f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{top_pad + plot_h + 15}" class="tick" text-anchor="middle">'
                     f'{x_top * k / 5:,.0f}</text><text x="{left - 5}" y="{y + 4:.1f}" class="tick" '
                     f'text-anchor="end">{tick(y_top * k / 5)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 14}" class="axis" text-anchor="middle">step</text>'
                 f'<text x="12" y="{top_pad + plot_h / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top_pad + plot_h / 2})">{_plain(y_label)}</text>')
    if marker is not None:
        x = sx(marker)
        parts.append(f'<g class="curve-marker"><title>evaluated checkpoint: step {marker:,.0f}</title><line '
                     f'x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" class="lb-ref"/><text '
                     f'x="{x + 3:.1f}" y="{top_pad + 10}" class="tick">checkpoint {marker:,.0f}</text></g>')
    for n, (name, kind, ps) in enumerate(series):
        kind = kind if kind in CURVE_CLASSES else "train"
        if not ps:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ps)
        parts.append(f'<polyline class="curve-line curve-{kind}" points="{path}"><title>{_plain(name)}</title>'
                     f'</polyline>')
        if kind == "eval":
            parts += [f'<circle class="curve-dot" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3"><title>{_plain(name)} at '
                      f'step {x:,.0f}: {tick(y) if money else f"{y:,.4g}"}</title></circle>' for x, y in ps]
        lx = left + 8 + 150 * n
        parts.append(f'<g class="curve-legend"><line x1="{lx}" y1="{height - 4}" x2="{lx + 18}" y2="{height - 4}" '
                     f'class="curve-line curve-{kind}"/><text x="{lx + 22}" y="{height - 1}" class="tick">'
                     f'{_plain(name)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


# --- a cost-quality chart: MAE against a cost, the Pareto front marked --------------------------
@dataclass(frozen=True)
class Dot:
    """One run on a cost-quality chart; `label` and `tip` are data (escaped here)."""

    x: float
    mae: float
    low: float | None = None                # the MAE's 95% CI
    high: float | None = None
    label: str = ""
    tip: str = ""
    front: bool = False
    mark: str = ""                          # a front point's number in the table beside the chart


def _x_scale(xs: list[float], log: bool, left: float, plot: float):
    """(x -> pixel, tick values): decades on a log axis, five steps from 0 on a linear one."""
    if log:
        lo, hi = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
        hi = max(hi, lo + 1)
        step = max(1, math.ceil((hi - lo) / 8))
        return (lambda v: left + plot * (math.log10(v) - lo) / (hi - lo),
                [10.0 ** k for k in range(lo, hi + 1, step)])
    top = nice_ceiling(max(xs))
    return (lambda v: left + plot * min(max(v, 0.0), top) / top), [top * k / 5 for k in range(6)]


def tradeoff_chart(dots: list[Dot], *, axis: str, tick, log: bool, width: int = 560, height: int = 300) -> Markup:
    """MAE (y, from 0, with CI whiskers) against a cost (x; `tick` formats its values), front
    points filled, numbered and joined by the staircase of the best MAE up to each cost
    (`dots` marked front in order of better cost first)."""
    left, head, plot_w, plot_h = 58, 14, width - 58 - 24, height - 14 - 48
    top = nice_ceiling(min(max(d.high if d.high is not None else d.mae for d in dots),
                           3 * float(np.median([d.mae for d in dots]))))
    sx, ticks = _x_scale([d.x for d in dots], log, left, plot_w)

    def sy(v): return head + plot_h - plot_h * min(max(v, 0.0), top) / top

    parts = [f'<svg class="tradeoff" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="MAE against {_plain(axis)}, {len(dots)} runs" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{left}" y="{head}" width="{plot_w}" height="{plot_h}" class="plot-bg"/>']
    for v in ticks:
        parts.append(f'<line x1="{sx(v):.1f}" y1="{head}" x2="{sx(v):.1f}" y2="{head + plot_h}" class="grid"/>'
                     f'<text x="{sx(v):.1f}" y="{head + plot_h + 15}" class="tick" text-anchor="middle">'
                     f'{_plain(tick(v))}</text>')
    for k in range(6):
        y = sy(top * k / 5)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 5}" y="{y + 4:.1f}" class="tick" text-anchor="end">${top * k / 5:,.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 14}" class="axis" text-anchor="middle">{_plain(axis)}'
                 f'</text><text x="12" y="{head + plot_h / 2}" class="axis" text-anchor="middle" '
                 f'transform="rotate(-90 12 {head + plot_h / 2})">MAE ($, lower is better)</text>')
    front = [d for d in dots if d.front]
    if front:
        path = f"M{sx(front[0].x):.1f} {sy(front[0].mae):.1f}" + "".join(
            f"H{sx(d.x):.1f}V{sy(d.mae):.1f}" for d in front[1:])
        parts.append(f'<path d="{path}" class="to-step"/>')
    drawn = 0
    for d in sorted(dots, key=lambda d: d.front):          # the front drawn last, on top
        x, y = sx(d.x), sy(d.mae)
        parts.append(f'<g class="to-pt{" to-front" if d.front else ""}"><title>{_plain(d.label)} · MAE '
                     f'${d.mae:,.2f}' + (f' (95% CI ${d.low:,.2f} – ${d.high:,.2f})' if d.low is not None
                                          and d.high is not None else '') + f' · {_plain(d.tip)}</title>')
        if d.low is not None and d.high is not None:
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(d.low):.1f}" y2="{sy(d.high):.1f}" '
                         f'class="to-whisker"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if d.front else 3.5}"/>')
        if d.mark:          # alternately above and below: neighbours on a front sit close
            dy, drawn = (-8 if drawn % 2 == 0 else 15), drawn + 1
            parts.append(f'<text x="{x + 6:.1f}" y="{y + dy:.1f}" class="tick to-mark">{_plain(d.mark)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
