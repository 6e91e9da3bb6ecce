"""One list of kinds (harness/kinds.py): every predictor's kind, every kind the shipped data and
tasks name, and the docs' list are in it; a kind it does not know still renders (neutral)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from harness.kinds import KIND_BY_KEY, KINDS, NEUTRAL_COLOUR, kind_colour, known_kind, reference_group
from harness.report.build import BoardInfo, build_report
from harness.report.collect import entry_from_result
from harness.runs.results import published_result
from tests._docs import DOCS, markdown_table

REPO = Path(__file__).resolve().parent.parent


def test_the_docs_list_exactly_the_codes_kinds():
    rows = markdown_table(DOCS / "leaderboards.md", "**Kinds.**")
    assert [(r[0].strip("`"), r[1], r[2], r[3]) for r in rows] == \
        [(k.key, k.label, k.description, k.reference or "—") for k in KINDS]


def test_no_doc_names_a_kind_the_code_does_not_have():
    named = {}
    for path in [REPO / "README.md", *DOCS.glob("*.md")]:
        for word in re.findall(r"`((?:open|frontier)-[a-z-]+)`", path.read_text(encoding="utf-8")):
            named.setdefault(word, path.name)
    assert named, "the docs name no kind at all"
    assert {w: p for w, p in named.items() if w not in KIND_BY_KEY} == {}     # e.g. the old `open-chat`


def _kind_values(tree: ast.AST) -> list[ast.AST]:
    """What a predictor sets its kind to: class-level `kind = ...`, `self.kind = ...`, and what a
    `kind` property returns."""
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            values += [n.value for n in node.body if isinstance(n, ast.Assign)
                       and any(getattr(t, "id", None) == "kind" for t in n.targets)]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "kind"
                                                  and getattr(t.value, "id", None) == "self" for t in node.targets):
            values.append(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "kind":
            values += [n.value for n in ast.walk(node) if isinstance(n, ast.Return)]
    return values


def _kinds(value: ast.AST) -> list[str]:
    """The kinds a value names: known_kind("x") calls, through conditional expressions; a bare string
    (a kind set without the table's check) is returned as "BARE:x"; data (record["kind"]) names none."""
    if isinstance(value, ast.IfExp):
        return _kinds(value.body) + _kinds(value.orelse)
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "known_kind":
        return [value.args[0].value]
    if isinstance(value, ast.Constant):
        return [f"BARE:{value.value}"]
    return []


def test_every_predictor_kind_is_in_the_table():
    found = {}
    for path in (REPO / "harness" / "predictors").rglob("*.py"):
        for value in _kind_values(ast.parse(path.read_text(encoding="utf-8"))):
            for kind in _kinds(value):
                found.setdefault(kind, path.name)
    assert {k: p for k, p in found.items() if k not in KIND_BY_KEY} == {}    # BARE: set without known_kind
    assert {"model", "baseline", "frontier", "frontier-finetuned", "open-served", "open-base", "open-instruct",
            "open-finetuned"} <= set(found)
    with pytest.raises(ValueError, match="open-chat"):
        known_kind("open-chat")


def test_the_shipped_data_and_tasks_name_only_known_kinds(data_dir):
    named = set()
    for path in data_dir.glob("*/references.jsonl"):
        named |= {json.loads(line)["kind"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    for path in (REPO / "tasks").glob("*.yaml"):
        named |= {row["kind"] for row in yaml.safe_load(path.read_text(encoding="utf-8")).get("published") or []}
    assert {"human", "frontier", "baseline", "frontier-rag", "ensemble"} <= named
    assert named - set(KIND_BY_KEY) == set()


def test_colours_and_reference_groups():
    assert len({k.colour for k in KINDS}) == len(KINDS) and NEUTRAL_COLOUR not in {k.colour for k in KINDS}
    assert all(re.fullmatch(r"#[0-9a-f]{6}", k.colour) for k in KINDS)
    assert kind_colour("no-such-kind") == kind_colour(["not", "a", "string"]) == NEUTRAL_COLOUR
    assert reference_group("human") == "human" and reference_group("frontier-rag") == "frontier"
    assert reference_group("human-ish") is None and reference_group(None) is None


def test_an_unknown_kind_from_data_is_shown_as_written_in_neutral_grey(tmp_path):
    hostile = 'robot"><script>alert(1)</script>'
    rows = [("human", "Human", 120.0), ("frontier", "GPT", 80.0), (hostile, "Odd row", 100.0)]
    entries = [entry_from_result(published_result("t", f"reference:{n}", {"mae": mae, "kind": kind, "label": label}),
                                 "t") for n, (kind, label, mae) in enumerate(rows)]
    index = build_report(BoardInfo("kinds", "Kinds", "", ["t"]), entries, tmp_path / "out")
    page = index.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "robot&#34;&gt;&lt;script&gt;" in page     # as written, escaped
    chart = page[page.index("<svg class=\"leaderboard\""):page.index("</svg>")]
    assert chart.count(f'fill="{NEUTRAL_COLOUR}"') == 2         # its bar and its legend swatch
    assert chart.count(f'fill="{KIND_BY_KEY["human"].colour}"') == 2
