"""Hostile inputs (issue 10, classes 5-7): YAML/JSON tricks, unsafe names and paths, absurd numbers.

Every case runs the real CLI on a small copy of the course data and asserts: exit 2 (input
errors), one `pricebench: ` line naming the file and line or field, no traceback, and the
run store (and any output folder) unchanged.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from harness.predictors import register_backend
from harness.predictors.base import Predictor, Reply
from harness.predictors.options import option
from harness.scoring import MAX_GUESS, parse_price
from harness.cli import main
from tests._hostile import assert_one_line_error, cli, snapshot

REPO = Path(__file__).resolve().parent.parent
TASK_TEXT = (REPO / "tasks" / "amazon8.yaml").read_text(encoding="utf-8")
ITEM_LINE = 7          # the corrupted line of test.jsonl
KEEP_ITEMS = 300       # items copied: the 250 evaluated, and a few more for the train slice


@pytest.fixture(scope="module")
def base(tmp_path_factory, data_dir):
    """A small data folder (the 250 evaluated items and a few more) and a store with one good run."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "data" / "amazon8").mkdir(parents=True)
    lines = (data_dir / "amazon8" / "test.jsonl").read_bytes().split(b"\n")[:KEEP_ITEMS]
    (root / "data" / "amazon8" / "test.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    shutil.copy(data_dir / "amazon8" / "references.jsonl", root / "data" / "amazon8")
    (root / "amazon8.yaml").write_text(TASK_TEXT, encoding="utf-8")
    assert main(["--data-dir", str(root / "data"), "--store", str(root / "runs"), "run", "--task",
                 str(root / "amazon8.yaml"), "--model", "reference:human"]) == 0
    return root


@pytest.fixture
def case(base, tmp_path, monkeypatch, capsys):
    """A private copy of data, store and the real amazon8 task; `run` checks the store is unchanged."""
    monkeypatch.chdir(tmp_path)                  # a stray default output would land here
    shutil.copytree(base / "data", tmp_path / "data")
    shutil.copytree(base / "runs", tmp_path / "runs")

    class Case:
        root, data, store = tmp_path, tmp_path / "data", tmp_path / "runs"

        def write(self, name: str, text: str) -> Path:
            (tmp_path / name).write_text(text, encoding="utf-8")
            return tmp_path / name

        def run(self, *argv):
            before = snapshot(self.store)
            code, out, err = cli(capsys, "--data-dir", self.data, "--store", self.store, *argv)
            assert snapshot(self.store) == before, "the run store changed"
            assert not (tmp_path / "reports").exists()
            return code, out, err

        def spec(self, kind: str, path: Path):
            """`run` a task YAML on the recorded human run, or dry-run a leaderboard YAML."""
            return self.run(*(("run", "--task", path, "--model", "reference:human") if kind == "task"
                              else ("suite", path, "--dry-run")))
    c = Case()
    c.task = c.write("amazon8.yaml", TASK_TEXT)
    return c


def _line(text: str, marker: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is no longer in the file: update the case"
    return text.replace(old, new, 1)


# --- class 5: YAML and JSON ------------------------------------------------------------------
def _bomb(levels: int, width: int = 9) -> str:
    rows = [f'l0: &l0 [{", ".join(["lol"] * width)}]']
    rows += [f'l{i}: &l{i} [{", ".join([f"*l{i - 1}"] * width)}]' for i in range(1, levels)]
    return "\n".join(rows) + "\n"


BOARD = """name: hostile
title: Hostile inputs
tasks: [{task}]
references:
  amazon8: [human]
models:
  - {{model: "reference:gpt-4o-mini", quant: none}}
"""

YAML_CASES = {  # id -> (task | board, text from (task text, board text), marker of the line, words)
    "task billion laughs": ("task", lambda t, b: _edit(t, "eval_slice:", _bomb(9) + "eval_slice:"),
                            "l1: &l1", "YAML aliases (*l0) are not allowed"),
    "task recursive alias": ("task", lambda t, b: _edit(t, "prompts:\n", "prompts: &p\n  self: *p\n"),
                             "self: *p", "YAML aliases (*p) are not allowed"),
    "task harmless alias": ("task", lambda t, b: _edit(t, "  base: ", "  base: &b ") + "extra: *b\n",
                            "extra: *b", "YAML aliases (*b)"),
    "board billion laughs": ("board", lambda t, b: b + _bomb(9), "l1: &l1", "YAML aliases (*l0) are not allowed"),
    "board recursive alias": ("board", lambda t, b: b + "loop: &loop [1, *loop]\n", "loop:", "YAML aliases (*loop)"),
    "board merge key": ("board", lambda t, b: b + "  - {<<: *m, model: 'reference:human'}\n",
                        "<<: *m", "YAML aliases (*m)"),
    "task duplicate key": ("task", lambda t, b: _edit(t, "source:\n", 'eval_slice: "all"\nsource:\n'),
                           'eval_slice: "all"', "field 'eval_slice': key given twice"),
    "task duplicate nested key": ("task", lambda t, b: _edit(t, "    assistant_prefix:",
                                                             '    user: "again {text}"\n    assistant_prefix:'),
                                  "again {text}", "field 'prompts.chat.user': key given twice"),
    "board duplicate key": ("board", lambda t, b: _edit(b, "title:", "name: other\ntitle:"),
                            "name: other", "field 'name': key given twice"),
    "board duplicate in flow map": ("board", lambda t, b: _edit(b, "quant: none}", "quant: none, quant: 4bit}"),
                                    "quant: 4bit", "field 'models.0.quant': key given twice"),
    "task non-scalar key": ("task", lambda t, b: t + "? [a, b]\n: 1\n", "? [a, b]", "keys must be plain"),
    "task python tag": ("task", lambda t, b: t + "evil: !!python/object/apply:os.system ['true']\n",
                        "evil:", "invalid YAML"),
    "task deep nesting": ("task", lambda t, b: t + "deep: " + "[" * 3000 + "]" * 3000 + "\n", None,
                          "nested too deeply"),
    "board two documents": ("board", lambda t, b: b + "---\nname: second\n", "---", "invalid YAML"),
}


@pytest.mark.parametrize("name", YAML_CASES)
def test_yaml_tricks_are_refused_at_once(name, case):
    kind, make, marker, words = YAML_CASES[name]
    text = make(TASK_TEXT, BOARD.format(task=case.task))
    code, _, err = case.spec(kind, case.write("bad.yaml", text))
    where = f"bad.yaml:{_line(text, marker)}:" if marker else "bad.yaml"
    assert_one_line_error(code, err, where, words, exit_code=2)


def test_the_unbroken_specs_still_work(case):
    """The controls of the matrix: the same task and leaderboard, unedited, run (dry)."""
    for kind, path in (("board", case.write("board.yaml", BOARD.format(task=case.task))), ("task", case.task)):
        code, out, err = case.spec(kind, path)
        assert code == 0 and "cached" in out, err


def test_shipped_tasks_and_leaderboards_pass_the_strict_checks():
    from harness.suite import load_leaderboard
    from harness.task_schema import validate
    from harness.tasks import task_files
    from harness.yamlspec import load_spec

    names = {path.stem: validate(load_spec(path))["name"] for path in task_files().values()}
    assert names == {"amazon8": "amazon8", "appliances": "appliances", "amazon25": "amazon25"}
    boards = {load_leaderboard(p).name for p in sorted((REPO / "leaderboards").glob("*.yaml"))}
    assert boards == {"course", "quantization", "in-context", "finetune", "base-models"}


UNKNOWN_KEYS = {  # id -> (task | board, old, new, the typo, the suggestion)
    "eval_slice": ("task", 'eval_slice: "0:250"', 'eval_slise: "0:250"', "eval_slise", "eval_slice"),
    "source": ("task", "  local:", "  locl:", "source.locl", "local"),
    "source.local": ("task", "    references:", "    referencs:", "source.local.referencs", "references"),
    "local train": ("task", "{file: pool/train.jsonl}", "{fiel: pool/train.jsonl}",
                    "source.local.train.0.fiel", "file"),
    "source.hub": ("task", "    dataset:", "    datset:", "source.hub.datset", "dataset"),
    "hub train": ("task", "{split: train}", "{splt: train}", "source.hub.train.0.splt", "split"),
    "prompts": ("task", "  base:", "  bse:", "prompts.bse", "base"),
    "prompts.chat": ("task", "    system:", "    sytem:", "prompts.chat.sytem", "system"),
    "published": ("task", "hit_rate: 11.6", "hit_rte: 11.6", "published.0.hit_rte", "hit_rate"),
    "board top": ("board", "models:", "modles:", "modles", "models"),
    "board model": ("board", "quant: none", "quantt: none", "models.0.quantt", "quant"),
}


@pytest.mark.parametrize("name", UNKNOWN_KEYS)
def test_unknown_keys_get_a_did_you_mean(name, case):
    kind, old, new, field, suggestion = UNKNOWN_KEYS[name]
    text = _edit(TASK_TEXT if kind == "task" else BOARD.format(task=case.task), old, new)
    code, _, err = case.spec(kind, case.write("bad.yaml", text))
    assert_one_line_error(code, err, f"bad.yaml:{_line(text, new.strip())}:", f"field '{field}'",
                          f"did you mean '{suggestion}'?", exit_code=2)


# --- class 6: names that become file names, and paths ---------------------------------------
UNSAFE_NAMES = ["../../x", "a/b", "a\\\\b", ".hidden", "a..b", "has space", "x" * 65, "", "-rf"]


@pytest.mark.parametrize("bad", UNSAFE_NAMES)
@pytest.mark.parametrize("kind", ["task", "board"])
def test_unsafe_names_are_refused(kind, bad, case):
    if kind == "task":                               # export-lm-eval names its files after the task
        text = _edit(TASK_TEXT, "name: amazon8", f'name: "{bad}"')
        code, _, err = case.run("export-lm-eval", case.write("bad.yaml", text), case.root / "lm")
        assert not (case.root / "lm").exists()
    else:                                            # the report folder is named after the board
        text = _edit(BOARD.format(task=case.task), "name: hostile", f'name: "{bad}"')
        code, _, err = case.spec(kind, case.write("bad.yaml", text))
    assert_one_line_error(code, err, f"bad.yaml:{_line(text, 'name: ')}:", "field 'name'", "not a safe name",
                          exit_code=2)


@pytest.mark.parametrize("task, words", [
    ("../../x", "unknown task '../../x'"),
    ("amazon9", "did you mean 'amazon8'?"),
    ("missing.yaml", "missing.yaml: field 'task': task file not found"),
])
def test_cli_task_names_are_looked_up_never_opened(task, words, case, monkeypatch):
    (case.root / "a" / "b").mkdir(parents=True)
    (case.root / "x").write_text(TASK_TEXT)       # what `../../x` would open from a/b
    monkeypatch.chdir(case.root / "a" / "b")
    code, _, err = case.run("run", "--task", task, "--model", "reference:human")
    assert_one_line_error(code, err, words, exit_code=2)


@pytest.mark.parametrize("path", ["../../etc/passwd", "amazon8/../../outside.jsonl"])
def test_data_paths_stay_in_the_data_folder(path, case):
    text = _edit(TASK_TEXT, "test: amazon8/test.jsonl", f"test: {path}")
    code, _, err = case.spec("task", case.write("bad.yaml", text))
    assert_one_line_error(code, err, f"bad.yaml:{_line(text, 'test: ' + path)}:", "field 'source.local.test'",
                          "inside the data folder", exit_code=2)


OBSTACLES = {  # id -> (file put in the way, its content, what the error names, words, exit code)
    "foreign yaml": ("lm/pricebench_amazon8.yaml", "task: my_own_task\n", "lm/pricebench_amazon8.yaml",
                     "not written by pricebench", 2),
    "foreign utils.py": ("lm/utils.py", "def mine():\n    pass\n", "lm/utils.py", "not written by pricebench", 2),
    "foreign jsonl": ("lm/pricebench_amazon8.jsonl", '{"question": "mine"}\n', "lm/pricebench_amazon8.jsonl",
                      "not written by pricebench", 2),
    "symlink yaml": ("lm/pricebench_amazon8.yaml", "link", "lm/pricebench_amazon8.yaml",
                     "not written by pricebench", 2),
    "folder is a file": ("lm", "a file\n", "lm", "is a file, not a folder", 2),
    "parent is a file": ("lm/file", "a file\n", "lm/file/sub", "a path component is a file", 2),
}


@pytest.mark.parametrize("name", OBSTACLES)
def test_export_never_clobbers(name, case):
    rel, content, named, words, exit_code = OBSTACLES[name]
    obstacle = case.root / "out" / rel
    obstacle.parent.mkdir(parents=True, exist_ok=True)
    if content == "link":
        (case.root / "target.yaml").write_text("# Written by `pricebench export-lm-eval but a link\n")
        obstacle.symlink_to(case.root / "target.yaml")
    else:
        obstacle.write_text(content)
    out = case.root / "out" / ("lm/file/sub" if rel == "lm/file" else "lm")
    before = snapshot(case.root / "out")
    code, _, err = case.run("export-lm-eval", case.task, out)
    assert_one_line_error(code, err, f"{case.root / 'out' / named}:", words, exit_code=exit_code)
    assert snapshot(case.root / "out") == before


def test_export_replaces_only_its_own_files_atomically(case):
    out = case.root / "lm"
    assert case.run("export-lm-eval", case.task, out)[0] == 0
    first = snapshot(out)
    assert sorted(first) == [".pricebench-lm-eval.json", "pricebench_amazon8.jsonl", "pricebench_amazon8.yaml",
                             "utils.py"]
    assert case.run("export-lm-eval", case.task, out, "--max-new-tokens", "8")[0] == 0   # its own files: fine
    second = snapshot(out)
    assert sorted(second) == sorted(first) and second["pricebench_amazon8.yaml"] != first["pricebench_amazon8.yaml"]
    assert oct((out / "utils.py").stat().st_mode & 0o777) == oct(0o644)


def test_export_keeps_a_users_files_and_refuses_one_in_its_way(case):
    out = case.root / "lm"
    assert case.run("export-lm-eval", case.task, out)[0] == 0
    (out / "my_task.yaml").write_text("task: my_own_task\n")
    (out / "pricebench_amazon8_chat.yaml").write_text("task: mine too\n")
    mine = {k: v for k, v in snapshot(out).items() if k in ("my_task.yaml", "pricebench_amazon8_chat.yaml")}
    assert case.run("export-lm-eval", case.task, out, "--max-new-tokens", "8")[0] == 0    # a re-run: theirs stay
    assert {k: v for k, v in snapshot(out).items() if k in mine} == mine
    before = snapshot(out)
    code, _, err = case.run("export-lm-eval", case.task, out, "--prompt", "chat")       # theirs in the way
    assert_one_line_error(code, err, f"{out / 'pricebench_amazon8_chat.yaml'}:", "not written by pricebench",
                          exit_code=2)
    assert snapshot(out) == before
    other = case.root / "other"                      # a folder without the marker is never written into
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    code, _, err = case.run("export-lm-eval", case.task, other)
    assert_one_line_error(code, err, f"{other}:", "not empty", exit_code=2)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_export_refuses_a_zero_token_budget(case):
    code, _, err = case.run("export-lm-eval", case.task, case.root / "lm", "--max-new-tokens", "0")
    assert_one_line_error(code, err, "--max-new-tokens", exit_code=2)
    assert not (case.root / "lm").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_export_into_an_unwritable_folder(case):
    out = case.root / "locked"
    out.mkdir(mode=0o500)
    code, _, err = case.run("export-lm-eval", case.task, out)
    assert_one_line_error(code, err, str(out), "permission denied", exit_code=1)
    assert snapshot(out) == {}


# --- class 7: numbers, and duplicate keys in JSON --------------------------------------------
DIGITS = "7" * 5000


def _raw(key: str, raw: str):
    """Set `key` of the item line to the raw JSON text `raw` (which json.dumps would not write)."""
    def mutate(line: str) -> str:
        return json.dumps({**json.loads(line), key: "@@RAW@@"}).replace('"@@RAW@@"', raw)
    return mutate


ITEM_CASES = {  # id -> (how the item line changes, field named, words)
    "price NaN": (_raw("price", "NaN"), "price", "NaN (not JSON)"),
    "price Infinity": (_raw("price", "Infinity"), "price", "Infinity (not JSON)"),
    "price -Infinity": (_raw("price", "-Infinity"), "price", "-Infinity (not JSON)"),
    "price 1e308": (_raw("price", "1e308"), "price", "absurd price"),
    "price 1e400": (_raw("price", "1e400"), "price", "finite"),
    "price 5000 digits": (_raw("price", DIGITS), "price", "5,000-character number"),
    "price 5000-digit float": (_raw("price", DIGITS + ".5"), "price", "5,002-character number"),
    "title 5000 digits": (_raw("title", DIGITS), "title", "must be a string"),
    "price twice": (lambda s: s[:-1] + ', "price": 1.0}', "price", "key given twice"),
    "id twice": (lambda s: '{"id": "other", ' + s[1:], "id", "key given twice"),
    "deep nesting": (lambda s: s[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}", None, "nested too deeply"),
}


@pytest.mark.parametrize("name", ITEM_CASES)
def test_absurd_numbers_and_duplicate_keys_in_items(name, case):
    mutate, field, words = ITEM_CASES[name]
    path = case.data / "amazon8" / "test.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[ITEM_LINE - 1] = mutate(lines[ITEM_LINE - 1])
    path.write_text("\n".join(lines), encoding="utf-8")
    code, _, err = case.spec("task", case.task)
    needles = [f"amazon8/test.jsonl:{ITEM_LINE}:", words] + ([f"field '{field}'"] if field else [])
    assert_one_line_error(code, err, *needles, exit_code=2)


REFERENCE_CASES = {  # id -> (how the human's record changes (dict -> JSON text), field, words)
    "prediction NaN": (lambda r: json.dumps(r).replace('"predictions": [', '"predictions": [NaN, ', 1)
                       .replace('"item_ids": [', '"item_ids": ["extra", ', 1), "predictions", "NaN (not JSON)"),
    "prediction Infinity": (lambda r: json.dumps({**r, "predictions": [float("inf")] + r["predictions"][1:]}),
                            "predictions", "Infinity (not JSON)"),
    "prediction 1e308": (lambda r: json.dumps({**r, "predictions": [1e308] + r["predictions"][1:]}),
                         "predictions", "not finite or over"),
    "prediction 5000 digits": (lambda r: json.dumps(r).replace('"predictions": [', f'"predictions": [{DIGITS}, ', 1)
                               .replace('"item_ids": [', '"item_ids": ["extra", ', 1), "predictions",
                               "5,000-character number"),
    "predictions twice": (lambda r: json.dumps(r)[:-1] + ', "predictions": []}', "predictions", "key given twice"),
    "predictions not a list": (lambda r: json.dumps({**r, "predictions": 5}), "predictions", "must be a list"),
    "item_ids not a list": (lambda r: json.dumps({**r, "item_ids": "amazon8-0000"}), "item_ids", "must be a list"),
    "not an object": (lambda r: json.dumps([r]), None, "expected a JSON object"),
}


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_absurd_recorded_predictions_are_refused(name, case):
    mutate, field, words = REFERENCE_CASES[name]
    path = case.data / "amazon8" / "references.jsonl"
    lines = path.read_text(encoding="utf-8").split("\n")
    number = next(n for n, line in enumerate(lines, 1) if line and json.loads(line)["run"] == "human")
    lines[number - 1] = mutate(json.loads(lines[number - 1]))
    path.write_text("\n".join(lines), encoding="utf-8")
    code, _, err = case.spec("task", case.task)
    needles = [f"references.jsonl:{number}:", words] + ([f"field '{field}'"] if field else [])
    assert_one_line_error(code, err, *needles, exit_code=2)


@pytest.mark.parametrize("reply, price", [
    ("9" * 400, None), ("$" + "9" * 400 + ".99", None), ("-" + "9" * 400, None), ("1" + "0" * 16, None),
    (f"{MAX_GUESS:.0f}", MAX_GUESS), ("1,000,000,000,000,000,000", None), ("nan", None), ("inf dollars", None),
    ("1e308", 1.0), ("Price is $12.50", 12.5),   # the course's parse: the first number of "1e308" is 1
])
def test_replies_with_absurd_numbers_are_parse_failures(reply, price):
    assert parse_price(reply) == price


class _FixedReply(Predictor):
    """Replies `options['reply']` to every item (a model that answers with a 400-digit number)."""

    batch_size = 1000

    class Options(Predictor.Options):
        reply: str = option("")

    def predict_batch(self, requests):
        return [Reply(raw=self.options.reply) for _ in requests]


@pytest.mark.parametrize("reply, failures", [("Price is $" + "9" * 400, 250), ("Price is $99", 0)])
def test_a_400_digit_reply_is_scored_as_a_guess_of_zero(reply, failures, case, capsys):
    register_backend("hostilefixed", _FixedReply)
    code, out, err = cli(capsys, "--data-dir", case.data, "--store", case.store, "run", "--task", case.task,
                         "--model", "hostilefixed:x", "-o", f"reply={reply}", "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    truths = [json.loads(line)["price"] for line in
              (case.data / "amazon8" / "test.jsonl").read_text().splitlines()[:250]]
    assert metrics["parse_failures"] == failures
    assert (metrics["mae"] == pytest.approx(sum(truths) / 250)) == bool(failures)


class _DirectPrice(Predictor):
    """A regressor-like predictor that returns a number directly (no text to parse)."""

    batch_size = 1000
    VALUES = {"inf": float("inf"), "nan": float("nan"), "huge": 1e300, "fine": 42.0}

    def predict_batch(self, requests):
        value = self.VALUES[self.spec.target]
        return [Reply(raw=f"{value}", price=value) for _ in requests]


@pytest.mark.parametrize("target, failures", [("inf", 250), ("nan", 250), ("huge", 250), ("fine", 0)])
def test_an_absurd_direct_price_is_a_parse_failure(target, failures, case, capsys):
    register_backend("directprice", _DirectPrice)
    code, out, err = cli(capsys, "--data-dir", case.data, "--store", case.store, "run", "--task", case.task,
                         "--model", f"directprice:{target}", "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["parse_failures"] == failures and math.isfinite(metrics["mae"])
    stored = (case.store / json.loads(out)["run_id"] / "metrics.json").read_text()
    assert json.loads(stored, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))["mae"] == metrics["mae"]
