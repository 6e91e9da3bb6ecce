"""One recipe across many bases: a template recipe (no base), a leaderboard's `finetune: {recipe,
bases, overrides}`, overrides in the adapter id, a recipe naming its base keeping its adapter id
(pinned on main before the base axis existed), and the dry run listing every training."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InputError
from harness.finetune.adapters import plan_adapter
from harness.finetune.recipe import load_recipe
from harness.suite import load_leaderboard
from harness.suite.training import plan, training_jobs
from harness.tasks import load_task

SETTINGS = """\
task: amazon8
data: {train: 16, validation: 4, validation_mae_items: 2}
lora: {r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, v_proj]}
training: {learning_rate: 2.0e-3, schedule: constant, batch_size: 4, max_steps: 2, precision: fp32, device: cpu}
"""
SMOL, GEMMA = "hf:smollm2-135m-instruct", "hf:gemma-3-270m"
# Computed on main before this change (commit 1bed24f), for `pin` below on amazon8: an adapter trained
# then keeps its id, and `--max-steps 3` (now also `overrides: {max_steps: 3}`) its own.
PINNED, PINNED_3_STEPS = "6383450e52ce36ea", "0a5a0a2e02fd4f14"


@pytest.fixture
def recipes(tmp_path) -> dict:
    pin = tmp_path / "pin.yaml"
    pin.write_text(f"name: pin\nbase: {SMOL}\n" + SETTINGS, encoding="utf-8")
    template = tmp_path / "tmpl.yaml"
    template.write_text("name: tmpl\n" + SETTINGS, encoding="utf-8")
    return {"pin": pin, "template": template}


@pytest.fixture
def amazon8(data_dir):
    return load_task("amazon8", data_dir=data_dir)


def _id(recipe, task) -> str:
    return plan_adapter(recipe, task).folder.adapter_id


def test_a_recipe_naming_its_base_keeps_its_adapter_id_and_equals_the_template_on_that_base(recipes, amazon8):
    assert _id(load_recipe(recipes["pin"]), amazon8) == PINNED
    assert _id(load_recipe(recipes["template"], base=SMOL), amazon8) == PINNED
    assert _id(load_recipe(recipes["pin"], base=SMOL), amazon8) == PINNED
    assert _id(load_recipe(recipes["pin"]), amazon8.with_in_context({"shots": 2})) == PINNED   # a run's shots
    assert _id(load_recipe(recipes["template"], base=GEMMA), amazon8) != PINNED


def test_an_override_changes_the_adapter_id_as_the_same_value_in_the_file_would(recipes, amazon8):
    assert _id(load_recipe(recipes["template"], base=SMOL, overrides={"max_steps": 3}), amazon8) == PINNED_3_STEPS
    assert _id(load_recipe(recipes["pin"]), amazon8) != _id(load_recipe(recipes["pin"], overrides={"max_steps": 3}),
                                                            amazon8) == PINNED_3_STEPS
    ids = {_id(load_recipe(recipes["pin"], overrides=o), amazon8)
           for o in ({"learning_rate": 1e-3}, {"train_size": 8}, {"seed": 7}, {"batch_size": 2},
                     {"in_context": {"shots": 1, "shot_selector": "nearest"}})}
    assert len(ids | {PINNED, PINNED_3_STEPS}) == 7


def test_a_template_is_refused_without_a_base(recipes, data_dir, capsys):
    from harness.predictors import ModelSpec, make_predictor

    with pytest.raises(InputError, match="template .* -o base=hf:<model>"):
        make_predictor(ModelSpec(f"finetune:{recipes['template']}"))
    assert cli.main(["--data-dir", str(data_dir), "finetune", str(recipes["template"])]) == 2
    assert "is a template (it names no base): give --base hf:<model>" in capsys.readouterr().err


def _board(tmp_path, models: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(f"name: b\ntasks: [amazon8]\nmodels:\n{models}", encoding="utf-8")
    return path


def test_a_two_base_entry_is_one_training_per_base_and_its_own_base_is_the_plain_recipe(recipes, tmp_path, data_dir):
    board = load_leaderboard(_board(tmp_path, f"""\
  - finetune: {{recipe: pin.yaml, bases: [{SMOL}, {GEMMA}]}}
    options: {{batch_size: 4}}
  - finetune: {{recipe: tmpl.yaml, bases: [{SMOL}], overrides: {{max_steps: 3}}}}
  - model: finetune:pin.yaml
    options: {{batch_size: 8}}
"""))
    trainings = training_jobs(board.jobs)
    assert len(board.jobs) == 4 and len(trainings) == 3           # pin on SmolLM2 is trained once for two rows
    assert board.jobs[0].options_dict == {"batch_size": 4}        # its own base: the same run as finetune:pin.yaml
    assert board.jobs[1].options_dict == {"batch_size": 4, "base": GEMMA}
    assert board.jobs[2].options_dict == {"base": SMOL, "overrides": {"max_steps": 3}}
    ids = [plan(t, data_dir).folder.adapter_id for t in trainings]
    assert ids[0] == PINNED and ids[2] == PINNED_3_STEPS and len(set(ids)) == 3
    assert [t.describe() for t in trainings] == [          # the recipe's own base is not repeated
        "amazon8 | train pin", "amazon8 | train pin on gemma-3-270m",
        "amazon8 | train tmpl on smollm2-135m-instruct max_steps=3"]


@pytest.mark.parametrize("entry, line, field, words", [
    ("  - finetune: {recipe: tmpl.yaml, bases: [hf:x], overrides: {max_step: 2}}\n", 4,
     "models.0.finetune.overrides.max_step", "did you mean 'max_steps'"),
    ("  - finetune:\n      recipe: tmpl.yaml\n      bases: [hf:smollm2-135m-instruct]\n      overrides:\n"
     "        max_steps: 0\n", 8, "models.0.finetune.overrides.max_steps", "between 1 and"),
    ("  - finetune:\n      recipe: tmpl.yaml\n      bases:\n        - hf:smollm2-135m-instruct\n        - gemma\n", 8,
     "models.0.finetune.bases.1", "hf: model spec"),
    ("  - finetune: {recipe: tmpl.yaml}\n", 4, "models.0.finetune.recipe", "template"),
    ("  - model: finetune:tmpl.yaml\n", 4, "models.0.model", "template"),
    ("  - model: finetune:pin.yaml\n    options: {overrides: {learning_rat: 1}}\n", 5,
     "models.0.options.overrides.learning_rat", "did you mean 'learning_rate'"),
    ("  - finetune: {recipe: tmpl.yaml, base: [hf:x]}\n", 4, "models.0.finetune.base", "did you mean 'bases'"),
    ("  - finetune: {recipe: pin.yaml}\n    options: {base: hf:x}\n", 5, "models.0.options.base", "finetune.bases"),
    ("  - finetune: {recipe: pin.yaml}\n    model: finetune:pin.yaml\n", 4, "models.0.finetune", "not both"),
])
def test_bad_bases_and_overrides_name_the_leaderboards_line_and_field(recipes, tmp_path, entry, line, field, words):
    path = _board(tmp_path, entry)
    with pytest.raises(InputError) as caught:
        load_leaderboard(path)
    e = caught.value
    assert (Path(e.path), e.line, e.field) == (path, line, field) and words in e.reason, (e.line, e.field, e.reason)


def test_the_dry_run_lists_every_training_with_its_adapter_id_and_every_evaluation(recipes, tmp_path, data_dir,
                                                                                  capsys, monkeypatch):
    monkeypatch.setenv("PRICEBENCH_ADAPTERS", str(tmp_path / "adapters"))
    board = _board(tmp_path, f"  - finetune: {{recipe: tmpl.yaml, bases: [{SMOL}, {GEMMA}], "
                             f"overrides: {{max_steps: 3}}}}\n")
    argv = ["--data-dir", str(data_dir), "--store", str(tmp_path / "runs"), "suite", str(board), "--dry-run"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^to-train +amazon8 \| train tmpl on smollm2-135m-instruct max_steps=3  adapter "
                     rf"{PINNED_3_STEPS}$", out, re.M), out
    assert re.search(r"^to-train +amazon8 \| train tmpl on gemma-3-270m max_steps=3  adapter [0-9a-f]{16}$", out, re.M)
    jobs = re.findall(r"^to-run +amazon8 \| finetune:\S+tmpl.yaml base=\"(hf:[\w.-]+)\" overrides=", out, re.M)
    assert jobs == [SMOL, GEMMA] and "2 trainings and 2 jobs" in out


CPU_TEMPLATE = """\
name: {name}
objective: {objective}
data: {{train: 4, validation: 0}}
lora: {{r: 4, alpha: 8, dropout: 0.0, target_modules: [q_proj, v_proj]}}
training: {{learning_rate: 1.0e-3, schedule: constant, batch_size: 2, max_steps: 1, max_length: 256, precision: fp32,
            device: cpu, threads: 1}}
"""


@pytest.mark.slow
def test_a_two_base_leaderboard_trains_each_base_once_and_a_second_suite_trains_nothing(tmp_path, data_dir, capsys):
    """Real training, 1 step of 2 items: the causal template on both test models, and the regression
    template with 2 nearest shots in every prompt (retrieval-augmented), each evaluated on 3 items."""
    pytest.importorskip("trl")
    import json

    from harness.predictors.hf.regression_head import read_head
    from harness.suite import run_suite
    from harness.suite.executors import LocalExecutor
    from tests.test_suite_finetune import _tiny_task

    for name, objective in (("tmpl", "causal_lm"), ("tmpl-regression", "regression")):
        (tmp_path / f"{name}.yaml").write_text(CPU_TEMPLATE.format(name=name, objective=objective), encoding="utf-8")
    adapters, store = tmp_path / "adapters", tmp_path / "runs"
    path = tmp_path / "board.yaml"
    path.write_text(f"""\
name: bases
tasks: [{_tiny_task(tmp_path, data_dir)}]
models:
  - finetune: {{recipe: tmpl.yaml, bases: [{SMOL}, {GEMMA}]}}
    options: {{adapters: {adapters}, batch_size: 3}}
  - finetune:
      recipe: tmpl-regression.yaml
      bases: [{SMOL}]
      overrides: {{in_context: {{shots: 2, shot_selector: nearest}}}}
    options: {{adapters: {adapters}, batch_size: 3}}
""", encoding="utf-8")
    board = load_leaderboard(path)
    first = run_suite(board, executor=LocalExecutor(progress_every=0), data_dir=data_dir, store=store)
    trained = list(first.trainings)
    assert [t.describe() for t, _ in trained] == ["tiny | train tmpl on smollm2-135m-instruct",
                                                  "tiny | train tmpl on gemma-3-270m",
                                                  "tiny | train tmpl-regression on smollm2-135m-instruct "
                                                  "in_context={\"shot_selector\": \"nearest\", \"shots\": 2}"]
    assert all(o["ok"] and not o["cached"] and o["steps"] == 1 for _, o in trained), trained
    assert len({o["adapter_id"] for _, o in trained}) == 3 and len(list(adapters.iterdir())) == 3
    assert [o["computed"] for _, o in first.outcomes] == [3, 3, 3], first.outcomes

    again = run_suite(board, executor=LocalExecutor(progress_every=0), data_dir=data_dir, store=store)
    assert all(o["cached"] for _, o in again.trainings) and [o["computed"] for _, o in again.outcomes] == [0, 0, 0]
    assert [o["adapter_id"] for _, o in again.trainings] == [o["adapter_id"] for _, o in trained]
    for _, outcome in trained:
        assert len(json.loads((Path(outcome["path"]) / "manifest.json").read_text())["sessions"]) == 1
    argv = ["--data-dir", str(data_dir), "finetune", str(tmp_path / "tmpl.yaml"), "--base", GEMMA, "--task",
            board.jobs[0].task, "--adapters", str(adapters)]
    assert cli.main(argv) == 0                                # the CLI's --base finds the suite's adapter
    assert f"adapter {trained[1][1]['adapter_id']} (cached: nothing retrained)" in capsys.readouterr().out

    rag_job, rag_outcome = first.outcomes[2]
    head = read_head(Path(trained[2][1]["path"]) / "final")
    assert head["truncation_side"] == "left"                # the item asked is at the end of a prompt with shots
    records = [json.loads(line) for line in (store / rag_outcome["run_id"] / "predictions.jsonl").open()]
    task = load_task(rag_job.task, data_dir=data_dir)
    from harness.prompts import build_requests

    asked = build_requests(task.with_in_context({"shots": 2, "shot_selector": "nearest"}), task.eval_items(), "base")
    assert [r["shots"] for r in records] == [[s.item.id for s in r.shots] for r in asked]
    assert all(len(r["shots"]) == 2 and r["parsed"] for r in records)
