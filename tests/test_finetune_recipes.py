"""Fine-tuning without training: recipes (strict, file:line:field errors), the prompt/completion
data (the evaluator's prompt, the course's rounded price, validation apart from evaluation),
the adapter id, and `finetune:` before its adapter exists. Fast: nothing trains here."""
from __future__ import annotations

import dataclasses

import pytest

from harness.cli import main
from harness.data import content_duplicates
from harness.errors import InputError
from harness.finetune.adapters import adapter_identity
from harness.finetune.data import FinetuneData, Pair, build_data, check_disjoint, completion_for, split_items
from harness.finetune.recipe import load_recipe, recipe_files
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.runs.store import run_id
from harness.tasks import load_task

GOOD = """\
name: tiny
base: hf:smollm2-135m-instruct
task: amazon8
data: {train: 40, validation: 8, validation_mae_items: 4}
training:
  learning_rate: 1.0e-3
  batch_size: 4
  max_steps: 3
"""


def _recipe(tmp_path, text: str = GOOD, name: str = "r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_recipes_load_with_the_courses_settings():
    files = recipe_files()
    assert {"course-2024-llama-3.1-8b-qlora", "course-2025-llama-3.2-3b-qlora-lite", "smollm2-135m-lora-cpu",
            "gemma-3-270m-lora-cpu"} <= set(files)
    course = load_recipe("course-2024-llama-3.1-8b-qlora")
    assert (course.method, course.quant, course.lora["r"], course.lora["alpha"], course.lora["dropout"]) == \
        ("qlora", "4bit", 32, 64, 0.1)
    assert course.lora["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (course.learning_rate, course.schedule, course.epochs, course.batch_size) == (1e-4, "cosine", 1, 16)
    lite = load_recipe("course-2025-llama-3.2-3b-qlora-lite")
    assert (lite.batch_size, lite.max_length, lite.warmup_ratio, lite.base) == \
        (32, 128, 0.01, "hf:meta-llama/Llama-3.2-3B")
    assert load_recipe(files["smollm2-135m-lora-cpu"]) == load_recipe("smollm2-135m-lora-cpu")


def test_the_study_templates_are_the_main_jobs_recipes_on_a_base():
    """base-models.yaml's fine-tunes: regression-quick on Gemma is the main job's Gemma recipe (one
    adapter), and the RAG template differs from it only by its shots and the room they need."""
    template = load_recipe("regression-quick", base="hf:gemma-3-270m")
    assert template.identity() == load_recipe("gemma-3-270m-regression-quick").identity()
    rag = load_recipe("regression-quick-rag", base="hf:gemma-3-270m")
    assert rag.shots.describe() == "2-shot nearest (tfidf)" and rag.max_length == 640
    assert rag.identity() != template.identity()
    assert load_recipe("regression-quick").base is None


@pytest.mark.parametrize("bad, line, field, words", [
    ("  learning_rat: 1.0e-3\n", 6, "training.learning_rat", "did you mean 'learning_rate'"),
    ("method: qlorra\n", 9, "method", "did you mean 'qlora'"),
    ("lora: {r: 0}\n", 9, "lora.r", "between 1 and 4,096"),
    ("lora: {r: 8, dropout: .nan}\n", 9, "lora.dropout", "must be a number"),
    ("  epochs: null\n", 6, "training.epochs", "epochs or max_steps"),
    ("objective: regresion\n", 9, "objective", "did you mean 'regression'"),
    ("qlora: {compute_dtype: bfloat16}\n", 9, "qlora", "only with method: qlora"),
    ("  threads: 0\n", 6, "training.threads", "between 1 and 4,096"),
])
def test_bad_recipe_names_file_line_and_field(tmp_path, bad, line, field, words):
    text = GOOD.replace("  max_steps: 3\n", "") if "epochs" in bad else GOOD
    # a key under training: goes right after "training:" (line 5); any other at the end (line 9)
    path = _recipe(tmp_path, text.replace("training:\n", "training:\n" + bad) if bad.startswith("  ") else text + bad)
    with pytest.raises(InputError) as e:
        load_recipe(path)
    assert (e.value.path, e.value.line, e.value.field) == (path, line, field)
    assert words in str(e.value)


def test_bad_base_and_its_options_name_the_field(tmp_path):
    path = _recipe(tmp_path, GOOD.replace("base: hf:smollm2-135m-instruct", "base: openai:gpt-4o"))
    with pytest.raises(InputError, match="hf: model spec") as e:
        load_recipe(path)
    assert (e.value.line, e.value.field) == (2, "base")
    path = _recipe(tmp_path, GOOD.replace("base: hf:smollm2-135m-instruct",
                                          "base:\n  model: hf:smollm2-135m-instruct\n  options: {revison: main}"))
    with pytest.raises(InputError, match="did you mean 'revision'") as e:
        load_recipe(path)
    assert (e.value.line, e.value.field) == (4, "base.options.revison")
    with pytest.raises(InputError, match="did you mean 'amazon8'") as e:
        load_recipe(_recipe(tmp_path, GOOD.replace("task: amazon8", "task: amazon9")))
    assert (e.value.line, e.value.field) == (3, "task")


def test_cli_bad_recipe_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys, monkeypatch):
    adapters = tmp_path / "adapters"
    path = _recipe(tmp_path, GOOD + "warmup: 3\n")
    code = main(["finetune", str(path), "--data-dir", str(data_dir), "--adapters", str(adapters)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"pricebench: error: {path}:9: field 'warmup': unknown key")
    assert not adapters.exists()
    assert main(["finetune", "no-such-recipe"]) == 2
    assert "unknown recipe 'no-such-recipe'" in capsys.readouterr().err


def test_pairs_are_the_evaluators_prompt_and_the_courses_rounded_price(tmp_path, data_dir):
    assert [completion_for(p) for p in (0.5, 1.5, 22.5, 23.5, 99.99, 412.2)] == \
        ["0.00", "2.00", "22.00", "24.00", "100.00", "412.00"]      # Python's round, as the course
    task = load_task("amazon8", data_dir=data_dir)
    data = build_data(task, load_recipe(_recipe(tmp_path)))
    assert (len(data.train), len(data.validation)) == (40, 8)
    items = {item.id: item for item in task.train_items()}
    for pair in data.train[:5] + data.validation[:5]:
        request = build_requests(task, [items[pair.item_id]], "base")[0]
        assert pair.prompt == request.prompt and pair.prompt.endswith("\n\nPrice is $")
        assert pair.completion == f"{round(items[pair.item_id].price)}.00"
    assert not {p.item_id for p in data.train} & {p.item_id for p in data.validation}
    again = build_data(task, load_recipe(_recipe(tmp_path)))
    assert again.data_hash == data.data_hash
    other = dataclasses.replace(load_recipe(_recipe(tmp_path)), seed=7)
    assert build_data(task, other).data_hash != data.data_hash


@pytest.mark.parametrize("name", ["amazon8", "amazon25"])
def test_validation_never_overlaps_the_evaluation_slice(data_dir, name):
    task = load_task(name, data_dir=data_dir)
    items, evaluation = task.train_items(), task.eval_items()
    train, validation = split_items(items, train="all", validation=len(items) - 1, seed=0)
    assert len(validation) == len(items) - 1
    assert not {i.id for i in validation} & {i.id for i in evaluation}
    assert content_duplicates(validation, evaluation) == []
    check_disjoint(validation, evaluation, what="validation")
    if name == "amazon25":          # train items sharing a title with 2 evaluation items were left out
        excluded = task.train_excluded
        assert {e["duplicates"] for e in excluded} == {"amazon25-0017", "amazon25-0058"}
        assert not {e["id"] for e in excluded} & {i.id for i in validation}
    with pytest.raises(InputError, match="validation overlaps the evaluation slice"):
        check_disjoint(validation + evaluation[:1], evaluation, what="validation")
    with pytest.raises(InputError, match="nothing left to train on"):
        split_items(items, train="all", validation=len(items), seed=0)


def test_adapter_id_covers_weights_data_and_recipe_but_not_names_or_device(tmp_path):
    recipe = load_recipe(_recipe(tmp_path))
    data = FinetuneData([Pair("a", "p", "1.00", 1.0)], [Pair("b", "q", "2.00", 2.0)])

    def aid(r=recipe, d=data, weights="w1"):
        return run_id(adapter_identity(r, d, weights))

    same = [dataclasses.replace(recipe, name="other", description="x", device="cuda", path="/elsewhere.yaml")]
    assert all(aid(r) == aid() for r in same)
    changed = [aid(dataclasses.replace(recipe, learning_rate=2e-3)), aid(recipe.with_max_steps(4)),
               aid(dataclasses.replace(recipe, lora={**recipe.lora, "r": 8})), aid(weights="w2"),
               aid(d=FinetuneData(data.train, []))]
    assert len({aid(), *changed}) == 1 + len(changed)


def test_finetune_model_before_training_says_how_to_train(tmp_path, data_dir, capsys):
    path = _recipe(tmp_path)
    adapters = tmp_path / "adapters"
    code = main(["run", "--task", "amazon8", "--slice", "0:2", "--model", f"finetune:{path}", "--data-dir",
                 str(data_dir), "--store", str(tmp_path / "runs"), "-o", f"adapters={adapters}"])
    err = capsys.readouterr().err
    assert code == 2 and f"run `pricebench finetune {path} --task amazon8` first" in err
    assert not (tmp_path / "runs").exists()
    with pytest.raises(InputError, match="--prompt base"):
        make_predictor(ModelSpec(f"finetune:{path}", prompt="chat"))
    with pytest.raises(InputError, match="recipe decides the quantization"):
        make_predictor(ModelSpec(f"finetune:{path}", quant="8bit"))
    with pytest.raises(InputError, match="unknown recipe"):
        make_predictor(ModelSpec("finetune:no-such-recipe"))
    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:2")
    predictor = make_predictor(ModelSpec(f"finetune:{path}", options={"adapters": str(adapters)}))
    ident = predictor.identity(task)
    later = make_predictor(ModelSpec(f"finetune:{path}", options={"adapters": str(adapters), "checkpoint": 2}))
    assert ident["finetune"]["adapter_id"] == later.identity(task)["finetune"]["adapter_id"]
    assert later.identity(task)["finetune"]["checkpoint"] == 2 and predictor.prompt_style == "base"
    everything = load_task("amazon8", data_dir=data_dir, eval_slice="all")     # test items 250- are trained on
    with pytest.raises(InputError, match="the adapter's training data overlaps the evaluation slice"):
        make_predictor(ModelSpec(f"finetune:{path}")).identity(everything)


def test_an_example_longer_than_max_length_is_left_out_not_cut():
    from transformers import AutoTokenizer

    from harness.finetune.train import fitting
    from harness.predictors.hf.testmodels import model_folder

    tokenizer = AutoTokenizer.from_pretrained(model_folder("smollm2-135m-instruct"))
    short, long = Pair("a", "Price is $", "12.00", 12.0), Pair("b", "word " * 300 + "Price is $", "12.00", 12.0)
    kept, left_out = fitting([short, long, short], tokenizer, 256)
    assert kept == [short, short] and left_out == 1
