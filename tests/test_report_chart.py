"""The leaderboard chart (report/svg.py leaderboard_chart, report/board.py chart): one bar per
ranked row, whiskers only where a row has a CI, reference lines, every label escaped."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.kinds import KIND_BY_KEY, NEUTRAL_COLOUR
from harness.report.aggregate import rank
from harness.report.board import chart
from harness.report.collect import entry_from_result
from harness.report.svg import Bar, RefLine, leaderboard_chart
from harness.runs.results import published_result

NS = "{http://www.w3.org/2000/svg}"
RLO = "\u202e"
HOSTILE = f'<script>alert(1)</script>"><img src=x onerror=alert(2)> {RLO}exe.txt'


def _parse(svg) -> ET.Element:
    return ET.fromstring(str(svg))          # well-formed XML: every text escaped


def _classed(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [e for e in root.iter(NS + tag) if css in e.get("class", "").split()]


def test_one_bar_per_row_whiskers_only_with_a_ci_and_both_reference_lines():
    bars = [Bar("best", 40.0, "$40.00", 30.0, 50.0, "#3b5bdb"), Bar("published", 60.0, "$60.00"),
            Bar("human", 126.55, "$126.55", 110.0, 145.0, "#e0a800"), Bar("worst", 300.0, "$300.00", 250.0, 350.0)]
    lines = [RefLine("human", "human $126.55", 126.55, "Human"), RefLine("frontier", "best frontier $40.00", 40.0)]
    root = _parse(leaderboard_chart(bars, lines, [("human", "#e0a800")], axis="MAE"))
    assert len(_classed(root, "rect", "lb-bar")) == 4
    assert len(_classed(root, "path", "lb-whisker")) == 3
    assert len(_classed(root, "line", "lb-ref-human")) == 1 and len(_classed(root, "line", "lb-ref-frontier")) == 1
    widths = [float(r.get("width")) for r in _classed(root, "rect", "lb-bar")]
    assert widths == sorted(widths) and widths[0] > 0                 # proportional to the MAE
    human_line = _classed(root, "line", "lb-ref-human")[0]
    human_bar = _classed(root, "rect", "lb-bar")[2]
    assert abs(float(human_line.get("x1")) - (float(human_bar.get("x")) + float(human_bar.get("width")))) < 0.2
    no_lines = _parse(leaderboard_chart(bars, [], []))
    assert not _classed(no_lines, "line", "lb-ref")


def test_a_hostile_label_kind_and_colour_stay_text():
    bars = [Bar(HOSTILE, 10.0, "$10.00", 5.0, 15.0, colour='red" onload="alert(3)', note=HOSTILE)]
    lines = [RefLine('x" onclick="alert(4)', HOSTILE, 10.0, HOSTILE)]
    svg = str(leaderboard_chart(bars, lines, [(HOSTILE, "#123456"), ("ok", "url(http://x)")], axis=HOSTILE))
    assert "<script" not in svg and "<img" not in svg and "alert(3)" not in svg      # the colour was refused
    assert RLO not in svg and "&lt;script&gt;" in svg
    root = _parse(svg)
    assert all(e.get("onload") is None and e.get("onclick") is None for e in root.iter())
    assert _classed(root, "rect", "lb-bar")[0].get("fill") == NEUTRAL_COLOUR
    assert len(_classed(root, "line", "lb-ref-other")) == 1
    swatches = [r.get("fill") for g in _classed(root, "g", "lb-legend") for r in g.iter(NS + "rect")]
    assert swatches == ["#123456", NEUTRAL_COLOUR]
    texts = "".join(root.itertext())
    assert "<script>alert(1)</script>" in texts           # shown as text (shortened), never as markup


def test_one_absurd_row_does_not_squash_the_others():
    bars = [Bar(f"m{k}", 100.0 + k, "$", 90.0 + k, 110.0 + k) for k in range(5)] + [Bar("absurd", 170_000.0, "$")]
    root = _parse(leaderboard_chart(bars, [], []))
    widths = [float(r.get("width")) for r in _classed(root, "rect", "lb-bar")]
    assert widths[0] >= widths[-1] / 5                  # the others stay readable (not 1/1700th)
    assert len(_classed(root, "path", "lb-break")) == 1


def _entry(run: str, kind: str, mae: float):
    return entry_from_result(published_result("t", f"reference:{run}", {"mae": mae, "kind": kind, "label": run}), "t")


def test_the_boards_chart_marks_the_human_and_the_best_frontier_row():
    rows = rank([_entry("gpt", "frontier", 80.0), _entry("rag", "frontier-rag", 48.5), _entry("me", "human", 126.55),
                 _entry("rf", "baseline", 110.0), _entry("odd", "made-up", 90.0)])
    root = _parse(chart(rows))
    assert len(_classed(root, "rect", "lb-bar")) == 5 and not _classed(root, "path", "lb-whisker")   # published
    captions = [t.text for t in _classed(root, "text", "lb-ref-label")]
    assert captions == ["human $126.55", "best frontier $48.50"]
    fills = [r.get("fill") for r in _classed(root, "rect", "lb-bar")]
    assert fills == [KIND_BY_KEY["frontier-rag"].colour, KIND_BY_KEY["frontier"].colour, NEUTRAL_COLOUR,
                     KIND_BY_KEY["baseline"].colour, KIND_BY_KEY["human"].colour]
    legend = ["".join(g.itertext()) for g in _classed(root, "g", "lb-legend")]
    assert legend == ["human", "frontier model", "frontier model + RAG", "baseline", "made-up"]
    baselines_only = _parse(chart(rank([_entry("rf", "baseline", 110.0)])))
    assert not _classed(baselines_only, "line", "lb-ref")
