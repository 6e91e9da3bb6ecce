"""The Base models page's answer: the Pareto front of MAE against a cost (report/pareto.py) on
hand-made rows, and a report from a small store of real recorded runs (relabelled as open bases,
a fine-tune and API runs) that draws a chart per cost, lists each front and says, per base, its
best way of use and whether it beats the next base (paired bootstrap)."""
from __future__ import annotations

import dataclasses
import random
import re
import shutil
from pathlib import Path

import pytest

import harness
from harness.report import report_for_store
from harness.report.collect import entries_from_store
from harness.report.pareto import HIGHER, LOWER, pareto_front
from harness.report.tradeoffs import tradeoffs, verdicts
from harness.report.selection import base_groups
from harness.runs.store import read_json, write_json_atomic
from harness.scoring import paired_bootstrap

NAN, INF = float("nan"), float("inf")


# --- the front on hand-made rows ---------------------------------------------------------------------
def test_one_point_better_on_both_is_the_whole_front():
    assert pareto_front([100.0, 120.0, 90.0, 95.0], [10, 20, 5, 5]) == [2]


def test_ties_duplicates_and_equal_costs():
    mae = [100, 100, 150, 100, 80, 110, 80]
    cost = [10, 10, 5, 20, 30, 10, 40]
    # 0 and 1 are duplicates: neither beats the other, both stay; 3 costs more for the same MAE; 5 has
    # a worse MAE at the same cost; 4 is the best MAE; 6 costs more for the same best MAE.
    assert pareto_front(mae, cost) == [0, 1, 2, 4]


def test_missing_costs_take_no_part_and_dominate_nothing():
    mae = [50.0, 100.0, 120.0, None, NAN, 60.0, 70.0]
    cost = [None, 10.0, 12.0, 1.0, 1.0, NAN, INF]
    assert pareto_front(mae, cost) == [1]                   # 0 (a better MAE) has no cost: not counted
    assert pareto_front([1.0, 2.0], [True, 3.0]) == [1]     # a boolean is no cost
    assert pareto_front([], []) == []


def test_direction_higher_is_better_for_speed():
    mae = [100.0, 90.0, 120.0, 130.0]
    speed = [10.0, 5.0, 20.0, 8.0]                          # items/s
    assert pareto_front(mae, speed, better=HIGHER) == [0, 1, 2]   # 3 is slower and worse than 0
    assert pareto_front(mae, speed, better=LOWER) == [1]           # read as a cost, 1 beats all
    with pytest.raises(ValueError, match="better"):
        pareto_front(mae, speed, better="smaller")
    with pytest.raises(ValueError, match="equally long"):
        pareto_front(mae, speed[:2])


def _dominated(i, mae, cost, sign) -> bool:
    return any(mae[j] <= mae[i] and sign * cost[j] <= sign * cost[i]
               and (mae[j] < mae[i] or sign * cost[j] < sign * cost[i]) for j in range(len(mae)))


@pytest.mark.parametrize("better", [LOWER, HIGHER])
def test_the_front_is_the_definition_on_many_tied_rows(better):
    """Against the definition (no row at least as good on both and better on one), on rows drawn
    from a small grid: many ties and duplicates."""
    rng = random.Random(7)
    sign = 1 if better == LOWER else -1
    for _ in range(200):
        n = rng.randint(1, 12)
        mae = [float(rng.randint(1, 5)) for _ in range(n)]
        cost = [float(rng.randint(0, 4)) for _ in range(n)]
        expected = [i for i in range(n) if not _dominated(i, mae, cost, sign)]
        assert pareto_front(mae, cost, better=better) == expected, (mae, cost)


# --- a report from a small store ---------------------------------------------------------------------
HOSTILE = "hf:<img src=x onerror=alert(1)>\u202e"
PLAN = {        # recorded run -> (model, kind, manifest changes): real per-item predictions, relabelled
    "human": ("hf:base-a", "open-base", {"info": {"parameters": 1_000_000_000}, "timings": {"items_per_s": 5.0}}),
    "claude-3-5-sonnet": ("hf:base-a", "open-base", {"info": {"parameters": 1_000_000_000},
                                                     "in_context": {"shots": 5, "shot_selector": "nearest"},
                                                     "timings": {"items_per_s": 2.0}}),
    "llama-3.1-8b-base-4bit": ("hf:base-b", "open-base", {"info": {"parameters": 8_030_261_248}, "quant": "4bit",
                                                          "timings": {"items_per_s": 1.0}}),
    "llama-3.1-8b-qlora": ("finetune:course-qlora", "open-finetuned", {
        "info": {"parameters": 8_072_261_248, "training": {"base": "hf:base-b", "recipe": "course-qlora",
                                                           "train_s": 3600.0}},
        "quant": "4bit", "timings": {"items_per_s": 0.8}}),
    "gpt-4o-mini-rag": ("hf:smollm2-135m-instruct", "open-instruct", {"info": {}, "timings": {"items_per_s": 9.0}}),
    "ensemble": (HOSTILE, "open-base", {"info": {}, "timings": {"items_per_s": 3.0}}),
    "gpt-4o-mini": ("openai:gpt-4o-mini", "frontier", {"info": {}, "cost_usd": 0.05, "timings": {"items_per_s": 4.0}}),
    "gpt-4o-2024-08-06": ("openai:gpt-4o", "frontier", {"info": {}, "cost_usd": 1.25,
                                                         "timings": {"items_per_s": 3.5}}),
    "constant-mean": None,                                  # a baseline: on no chart
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir) -> Path:
    """The course's recorded runs on amazon8, written by the real runner, then relabelled."""
    store = tmp_path_factory.mktemp("report-pareto") / "runs"
    for name in PLAN:
        harness.run("amazon8", f"reference:{name}", data_dir=data_dir, store=store, progress=False)
    for path in store.glob("*/manifest.json"):
        manifest = read_json(path)
        plan = PLAN[manifest["model"].split(":", 1)[1]]
        if plan:
            model, kind, changes = plan
            write_json_atomic(path, {**manifest, "model": model, "label": model, "kind": kind, **changes})
    return store


def _runs(store: Path) -> dict:
    return {e.model + (" 5-shot" if "in_context" in e.manifest else ""): e for e in entries_from_store(store)[0]}


def _expected_front(rows: list, better: str) -> set:
    """The run ids on the front, by the definition."""
    sign = 1 if better == LOWER else -1
    mae, cost = [r[1] for r in rows], [r[2] for r in rows]
    return {rows[i][0] for i in range(len(rows)) if not _dominated(i, mae, cost, sign)}


def _figure(page: str, axis: str) -> str:
    return page.split(f'<figure class="tradeoff" data-axis="{axis}">')[1].split("</figure>")[0]


def test_the_page_draws_each_cost_lists_each_front_and_answers_per_base(store, tmp_path):
    runs = _runs(store)
    out = report_for_store(store=store, out_dir=tmp_path / "out").parent
    page = (out / "selection.html").read_text("utf-8")
    assert "<img" not in page and "&lt;img src=x" in page and "\u202e" not in re.sub(r"<bdi>[^<]*</bdi>", "", page)
    answer = page.split("Which base, used how")[1].split("Each base, every way")[0]
    assert answer.count('<svg class="tradeoff"') == 4
    mae = {k: e.shown["mae"] for k, e in runs.items()}
    costs = {   # by hand, from PLAN: (axis, better) -> {run: figure}
        ("parameters", LOWER): {"hf:base-a": 1e9, "hf:base-a 5-shot": 1e9, "hf:base-b": 8_030_261_248,
                                "finetune:course-qlora": 8_072_261_248, "hf:smollm2-135m-instruct": 134_515_008},
        ("train_s", LOWER): {"hf:base-a": 0, "hf:base-a 5-shot": 0, "hf:base-b": 0, "finetune:course-qlora": 3600,
                             "hf:smollm2-135m-instruct": 0, HOSTILE: 0},
        ("items_per_s", HIGHER): {k: e.manifest["timings"]["items_per_s"] for k, e in runs.items()
                                  if k != "reference:constant-mean"},
        ("usd_per_1000", LOWER): {"openai:gpt-4o-mini": 0.05 / 250 * 1000, "openai:gpt-4o": 1.25 / 250 * 1000},
    }
    assert len(costs[("items_per_s", HIGHER)]) == 8
    for (axis, better), figures in costs.items():
        figure = _figure(answer, axis)
        table = figure.split('<table class="small front"')[1]
        listed = re.findall(r'<tr data-run="([0-9a-f]+)">', table)
        expected = _expected_front([(runs[k].run_id, mae[k], v) for k, v in figures.items()], better)
        assert set(listed) == expected and len(listed) == len(expected), axis
        assert figure.count("<circle") == len(figures) and figure.count('class="to-pt to-front"') == len(expected)
        assert figure.count('class="to-step"') == 1 and figure.count('class="tick to-mark"') == len(expected)
    assert "parameters (log scale)" in _figure(answer, "parameters")           # 135M to 8B
    assert "(log scale)" not in _figure(answer, "train_s")                      # from 0 s
    price = _figure(answer, "usd_per_1000")
    assert "$0.2000" in price and "$5.0000" in price        # both on the front: the dearer one is better
    params = _figure(answer, "parameters")
    note = params.split("Left out, without this figure:")[1]
    assert "&lt;img src=x" in note and "smollm2" not in note   # no count, not a test model / the known count


def test_one_sentence_per_base_with_its_best_way_and_the_paired_test(store, tmp_path):
    runs = _runs(store)
    out = report_for_store(store=store, out_dir=tmp_path / "out").parent
    page = (out / "selection.html").read_text("utf-8")
    items = re.findall(r'<li data-verdict="([^"]*)">(.*?)</li>', page, flags=re.S)
    bases = {"hf:base-a": ["hf:base-a", "hf:base-a 5-shot"], "hf:base-b": ["hf:base-b", "finetune:course-qlora"],
             "hf:smollm2-135m-instruct": ["hf:smollm2-135m-instruct"], HOSTILE: [HOSTILE]}
    best = {b: min(rows, key=lambda k: runs[k].shown["mae"]) for b, rows in bases.items()}
    order = sorted(bases, key=lambda b: runs[best[b]].shown["mae"])
    assert [v for v, _ in items] == [b.replace("<", "&lt;").replace(">", "&gt;").replace("\u202e", "")
                                     for b in order]
    assert len(items) == 4 and any("significantly better" in s for _, s in items)
    ways = {"hf:base-a": "zero-shot", "hf:base-a 5-shot": "few-shot", "hf:base-b": "zero-shot",
            "finetune:course-qlora": "fine-tuned", "hf:smollm2-135m-instruct": "zero-shot", HOSTILE: "zero-shot"}
    for k, (base, (_, sentence)) in enumerate(zip(order, items)):
        assert f"best used <strong>{ways[best[base]]}</strong>" in sentence
        assert f"MAE ${runs[best[base]].shown['mae']:,.2f}" in sentence
        if k + 1 == len(order):
            assert sentence.endswith("the last of the 4 open bases measured on this task.")
            continue
        test = paired_bootstrap(runs[best[base]].errors, runs[best[order[k + 1]]].errors)
        words = "significantly better than" if test["better"] == "A" else "not significantly better than"
        p = "p &lt; 0.001" if test["p_value"] < 0.001 else f"p = {test['p_value']:.3f}"
        assert f"; {words} the next base" in sentence and sentence.endswith(f" per item, {p}.")
    assert "constant-mean" not in page.split("Which base, used how")[1].split("Each base, every way")[0]


def test_two_bases_that_share_no_items_are_not_compared(store):
    runs = _runs(store)
    a, b = runs["hf:base-a"], runs["hf:base-b"]
    rows = [dataclasses.replace(a, items=a.items.iloc[:100]), dataclasses.replace(b, items=b.items.iloc[100:])]
    first, second = verdicts(base_groups(rows))
    assert first.next_base == second.base and first.test is None and second.next_base is None
    rows[1] = dataclasses.replace(b, items=b.items.iloc[50:])
    first, _ = verdicts(base_groups(rows))
    expected = paired_bootstrap(a.items["error"].to_numpy()[50:100], b.items["error"].to_numpy()[50:100])
    assert first.shared == 50 and first.test["n"] == 50
    assert first.test["mean_diff"] == pytest.approx(expected["mean_diff"]) and first.test["better"] == expected["better"]
    assert verdicts(base_groups([a, b]))[0].shared is None                  # all items shared: not said
    assert all(not c.points for c in tradeoffs([]).charts) and tradeoffs([]).verdicts == []


def test_the_page_words_a_comparison_without_shared_items_and_a_lone_base(store, tmp_path):
    from harness.report.build import BoardInfo, build_report

    runs = _runs(store)
    a, b = runs["hf:base-a"], runs["hf:base-b"]
    rows = [dataclasses.replace(a, items=a.items.iloc[:100]), dataclasses.replace(b, items=b.items.iloc[100:])]
    page = (build_report(BoardInfo("t", "t", "", ["amazon8"]), rows, tmp_path / "out").parent
            / "selection.html").read_text("utf-8")
    sentences = re.findall(r'<li data-verdict="[^"]*">(.*?)</li>', page, flags=re.S)
    assert "its best run shares no items with that of the next base" in sentences[0]
    assert sentences[0].endswith(": not compared.") and "p =" not in sentences[0]
    assert sentences[1].endswith("; the last of the 2 open bases measured on this task.")
    page = (build_report(BoardInfo("t", "t", "", ["amazon8"]), rows[:1], tmp_path / "out").parent
            / "selection.html").read_text("utf-8")
    assert "; the only open base measured on this task.</li>" in page


def test_unreadable_costs_are_left_out_by_name_never_a_crash(store, tmp_path):
    """A hand-edited manifest: a count past any float, a speed in words, a negative cost."""
    store_copy = tmp_path / "runs"
    shutil.copytree(store, store_copy)
    edits = {"hf:base-b": {"info": {"parameters": 10**400}, "timings": {"items_per_s": "fast"}},
             "openai:gpt-4o": {"cost_usd": -3.0, "timings": {"items_per_s": -1}}}
    for path in store_copy.glob("*/manifest.json"):
        manifest = read_json(path)
        if manifest["model"] in edits:
            write_json_atomic(path, {**manifest, **edits[manifest["model"]]})
    page = (report_for_store(store=store_copy, out_dir=tmp_path / "out").parent / "selection.html").read_text("utf-8")
    answer = page.split("What a row's MAE costs")[1]
    for axis, names in (("parameters", ["hf:base-b · zero-shot"]), ("items_per_s", ["hf:base-b", "openai:gpt-4o"]),
                        ("usd_per_1000", ["openai:gpt-4o"])):
        note = _figure(answer, axis).split("Left out, without this figure:")[1]
        assert all(name in note for name in names), (axis, note)
    assert "One run only has this figure" in _figure(answer, "usd_per_1000")
    assert not re.search(r"NaN|Infinity|\binf\b", answer)
