"""Retrieval-augmented fine-tuning: a recipe's `in_context` renders every training prompt with its
nearest train items, as the evaluator shows them, never the item itself nor a planted copy of it
(nor a validation item); the fine-tune is then evaluated with the same shots, and refuses others."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.data import read_items
from harness.errors import InputError
from harness.finetune.data import build_data
from harness.finetune.recipe import load_recipe
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.retrieval import indexes
from harness.retrieval.config import task_for
from harness.tasks import load_task
from tests._in_context_support import TASK

RECIPE = """\
name: rag
base: hf:smollm2-135m-instruct
objective: {objective}
task: {task}
data: {{train: all, validation: 0}}
in_context: {{shots: 2, shot_selector: nearest}}
lora: {{r: 4, alpha: 8, dropout: 0.0, target_modules: [q_proj, v_proj]}}
training: {{max_steps: 1, batch_size: 2, max_length: 512, precision: fp32, device: cpu, threads: 1}}
"""


@pytest.fixture
def copied(tmp_path, data_dir) -> tuple[Path, Path]:
    """A task whose train split holds train item 1003 and, planted, a copy of it (title re-cased and
    re-punctuated, another price, another id); (the task YAML, the recipe YAML)."""
    items = read_items(Path(data_dir) / "amazon8" / "test.jsonl")
    train = [i.to_dict() for i in items[1000:1060]]
    twin = {**train[3], "id": "planted-copy", "price": round(train[3]["price"] * 3 + 1, 2),
            "title": train[3]["title"].upper() + "!!"}
    train.insert(40, twin)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "eval.jsonl").write_text("".join(json.dumps(i.to_dict()) + "\n" for i in items[:40]))
    (folder / "train.jsonl").write_text("".join(json.dumps(i) + "\n" for i in train))
    task = folder / "planted.yaml"
    task.write_text(TASK)
    recipe = tmp_path / "rag.yaml"
    recipe.write_text(RECIPE.format(objective="causal_lm", task=task), encoding="utf-8")
    return task, recipe


def _task(path: Path):
    return load_task(path, data_dir=path.parent)


def test_training_prompts_show_k_neighbours_never_the_item_a_copy_or_a_validation_item(copied):
    task_path, recipe_path = copied
    task, recipe = _task(task_path), load_recipe(recipe_path)
    train = {item.id: item for item in task.train_items()}
    copy = train["planted-copy"]
    original = next(item for item in train.values() if item.title.upper() + "!!" == copy.title)
    index, _ = indexes.load_index([item.text for item in task.train_items()], task.train_hash, "tfidf")
    nearest, _ = index.search([original.text, copy.text], 2)
    ranked = [{task.train_items()[n].id for n in row} for row in nearest]
    assert ranked == [{original.id, copy.id}] * 2           # the retriever's first choice for each is the other

    pairs = {pair.item_id: pair for pair in build_data(task, recipe).train}
    assert set(pairs) == set(train)
    for item_id, pair in pairs.items():
        item = train[item_id]
        assert pair.prompt.count(item.text) == 1 and pair.prompt.endswith(item.text + "\n\nPrice is $")
        assert pair.prompt.count("Price is $") == 3                       # 2 completed shots, then the item
    assert copy.text == original.text                 # so the count above shows neither is shown the other

    held = build_data(task, dataclasses.replace(recipe, validation=8))
    shown = "".join(pair.prompt for pair in held.train)
    assert len(held.validation) == 8 and all(pair.prompt.count("Price is $") == 3 for pair in held.validation)
    assert not any(train[pair.item_id].text in shown for pair in held.validation)


def test_the_fine_tune_is_evaluated_with_the_same_shots_and_refuses_others(copied):
    from harness.runs.runner import run_identity

    task_path, recipe_path = copied
    task, recipe = _task(task_path), load_recipe(recipe_path)
    spec = ModelSpec(f"finetune:{recipe_path}")
    predictor = make_predictor(spec)
    asked = task_for(task, predictor)
    assert asked.in_context == recipe.shots and recipe.shots.describe() == "2-shot nearest (tfidf)"
    pairs = {pair.item_id: pair for pair in build_data(task, recipe).train}
    some = task.train_items()[:5]                # asked as the evaluator asks: the very prompts it trained on
    assert [r.prompt for r in build_requests(asked, some, "base")] == [pairs[item.id].prompt for item in some]
    evaluated = build_requests(asked, task.eval_items(), "base")
    assert all(len(r.shots) == 2 and r.prompt.count("Price is $") == 3 for r in evaluated)
    identity, _ = run_identity(asked, spec, predictor)
    assert identity["task"]["in_context"]["shots"] == 2 and identity["task"]["in_context"]["retriever"] == "tfidf"
    for other in ({"shots": 0}, {"shots": 3, "shot_selector": "nearest"}):
        with pytest.raises(InputError, match="trained with 2-shot nearest"):
            task_for(task.with_in_context(other), predictor)
    same = task.with_in_context({"shots": 2, "shot_selector": "nearest"})
    assert task_for(same, predictor).in_context == asked.in_context


def test_a_regression_recipe_takes_the_same_in_context_and_its_predictor_asks_with_it(copied, tmp_path):
    task_path, _ = copied
    path = tmp_path / "rag-regression.yaml"
    path.write_text(RECIPE.format(objective="regression", task=task_path), encoding="utf-8")
    predictor = make_predictor(ModelSpec(f"finetune:{path}"))
    assert type(predictor).__name__ == "FinetuneRegressionPredictor"
    assert task_for(_task(task_path), predictor).in_context.shots == 2


@pytest.mark.parametrize("setting, field, words", [
    ("{shots: 2, retriever: tfidf}", "in_context.retriever", "add in_context.shot_selector nearest"),
    ("{shot: 2}", "in_context.shot", "did you mean 'shots'"),
    ("{shots: 2, shot_format: turns}", "in_context.shot_format", "not chat turns"),
    ("{shots: 100}", "in_context.shots", "between 0 and 64"),
])
def test_a_bad_in_context_names_the_recipes_line_and_field(copied, tmp_path, setting, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(copied[1].read_text().replace("{shots: 2, shot_selector: nearest}", setting), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_recipe(path)
    assert (caught.value.line, caught.value.field) == (6, field) and words in caught.value.reason, caught.value
