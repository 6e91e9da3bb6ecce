"""Charts as inline SVG strings: no chart library, no CDN, readable from file://.

Only numbers and fixed words go into the SVG; the one text from data (a point's tooltip)
is escaped, without bidirectional controls.
"""
from __future__ import annotations

import html
import math
import re

import numpy as np
from markupsafe import Markup, escape

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
