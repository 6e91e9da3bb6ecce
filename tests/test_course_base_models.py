"""The main job answers "which base model should I fine-tune?": leaderboards/course.yaml lists each
test model zero-shot, with nearest in-context examples and fine-tuned on amazon8, and the suite of
exactly those entries fills the report's "Base models" page (run for real on 4 items, with each
recipe cut to 2 training steps)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.finetune.recipe import load_recipe
from harness.suite import load_leaderboard, run_suite

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "leaderboards" / "course.yaml"
BASES = ("hf:smollm2-135m-instruct", "hf:gemma-3-270m")


def _ways(board, base: str) -> dict[str, list]:
    jobs = [j for j in board.jobs if j.task.endswith("amazon8") and not j.reference]
    shots = {id(j): int(j.in_context_dict.get("shots", 0)) for j in jobs}
    return {
        "zero-shot": [j for j in jobs if j.model == base and j.prompt == "base" and shots[id(j)] == 0],
        "nearest": [j for j in jobs if j.model == base and shots[id(j)] > 0
                    and j.in_context_dict.get("shot_selector") == "nearest"],
        "fine-tuned": [j for j in jobs if j.model.startswith("finetune:")
                       and load_recipe(j.model.split(":", 1)[1]).base == base],
    }


def test_the_course_leaderboard_lists_every_way_of_using_both_test_models():
    board = load_leaderboard(COURSE)
    for base in BASES:
        ways = _ways(board, base)
        assert all(ways.values()), (base, {k: len(v) for k, v in ways.items()})


def _cut_down_course(tmp_path: Path) -> Path:
    """course.yaml's open-model entries on a copy of amazon8 with 4 evaluation items (one at a time),
    each recipe a copy trained for 2 steps on 16 items: the same matrix, small enough to run."""
    task = yaml.safe_load((REPO / "tasks" / "amazon8.yaml").read_text())
    task["eval_slice"] = "0:4"
    (tmp_path / "amazon8.yaml").write_text(yaml.safe_dump(task))
    course = yaml.safe_load(COURSE.read_text())
    models = []
    for entry in course["models"]:
        if not entry["model"].startswith(("hf:", "finetune:")) or "amazon8" not in entry.get("tasks", ["amazon8"]):
            continue
        # batch_size 1: 4 items make one batch anyway, and hf: then skips its load-time batching check
        # (two short generations of three prompts per job: most of this test's time otherwise)
        entry = {**entry, "tasks": ["amazon8"], "options": {**entry.get("options", {}), "batch_size": 1}}
        if entry["model"].startswith("finetune:"):
            name = entry["model"].split(":", 1)[1]
            recipe = yaml.safe_load((REPO / "finetunes" / f"{name}.yaml").read_text())
            recipe["data"] = {"train": 16, "validation": 4}
            recipe["training"].update(max_steps=2, save_every=None, threads=1)
            (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
            entry["model"] = f"finetune:{name}.yaml"
        models.append(entry)
    board = {"name": "course-bases", "tasks": ["amazon8.yaml"], "models": models}
    (tmp_path / "course-bases.yaml").write_text(yaml.safe_dump(board))
    return tmp_path / "course-bases.yaml"


@pytest.mark.slow
def test_the_course_open_model_entries_fill_the_base_models_page(tmp_path, data_dir, monkeypatch):
    from harness.report import report_for_leaderboard

    monkeypatch.setenv("PRICEBENCH_ADAPTERS", str(tmp_path / "adapters"))
    board = load_leaderboard(_cut_down_course(tmp_path))
    result = run_suite(board, data_dir=data_dir, store=tmp_path / "runs", echo=lambda *_: None)
    assert not result.failures and not result.training_failures, (result.failures, result.training_failures)
    page = (report_for_leaderboard(board, out_dir=tmp_path / "report", data_dir=data_dir,
                                   store=tmp_path / "runs").parent / "selection.html").read_text("utf-8")
    assert "No open base model" not in page
    assert page.count("<li data-verdict=") == len(BASES)                 # a sentence per base
    for axis in ("parameters", "train_s", "items_per_s"):                 # a chart per cost, its front listed
        assert f'<figure class="tradeoff" data-axis="{axis}">' in page and f'<table class="small front" ' \
            f'data-axis="{axis}">' in page, axis
    for base in BASES:
        section = page.split(f'data-base="{base}"')[1].split("data-base=")[0]
        for way in ("zero-shot", "few-shot", "fine-tuned"):
            assert f'data-way="{way}"' in section, (base, way)
