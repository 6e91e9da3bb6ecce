"""Leakage by content: a train item that is an evaluation item under another id (and price) is
left out of the train split and counted; with --strict it is an error naming file:line:field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data import content_duplicates, normalize, read_items
from harness.errors import InputError
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli

TASK = """name: planted
eval_slice: "0:20"
source:
  local:
    test: eval.jsonl
    train:
      - {file: train.jsonl}
prompts:
  base: "How much?\\n\\n{text}\\n\\nPrice is $"
  chat: {system: "Price it", user: "{text}"}
"""


def _write(path: Path, items) -> None:
    path.write_text("".join(json.dumps(i.to_dict() if hasattr(i, "to_dict") else i) + "\n" for i in items))


@pytest.fixture
def planted(tmp_path, data_dir):
    """20 real evaluation items; a train file of 30 other real items with, on line 7, a copy of
    evaluation item 5 under a new id and a new price (its title re-cased and re-punctuated)."""
    items = read_items(data_dir / "amazon8" / "test.jsonl")
    _write(tmp_path / "eval.jsonl", items[:20])
    train = [i.to_dict() for i in items[1000:1030]]
    twin = items[5].to_dict()
    twin.update(id="planted-copy", price=round(twin["price"] * 3 + 1, 2), title=twin["title"].upper() + "!!")
    train.insert(6, twin)
    _write(tmp_path / "train.jsonl", train)
    (tmp_path / "planted.yaml").write_text(TASK)
    return tmp_path, items


def test_planted_copy_is_excluded_and_counted(planted):
    folder, items = planted
    task = load_task(folder / "planted.yaml", data_dir=folder)
    ids = [i.id for i in task.train_items()]
    assert "planted-copy" not in ids and len(ids) == 30
    assert task.train_excluded == [{"id": "planted-copy", "duplicates": items[5].id, "by": "title"}]


def test_strict_turns_the_copy_into_an_error_naming_file_line_and_twin(planted):
    folder, items = planted
    task = load_task(folder / "planted.yaml", data_dir=folder, strict=True)
    with pytest.raises(InputError) as err:
        task.train_items()
    assert (err.value.path, err.value.line, err.value.field) == (folder / "train.jsonl", 7, "title")
    assert items[5].id in str(err.value) and "planted-copy" in str(err.value)


def test_cli_strict_run_refuses_and_plain_run_records_the_exclusion(planted, capsys, tmp_path):
    folder, items = planted
    args = ["run", "--task", folder / "planted.yaml", "--model", "baseline:constant-mean", "--data-dir", folder,
            "--store", tmp_path / "runs"]
    code, _, err = cli(capsys, "--strict", *args)
    assert_one_line_error(code, err, "train.jsonl:7", "planted-copy", items[5].id)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    manifest = json.loads(next((tmp_path / "runs").glob("*/manifest.json")).read_text())
    assert manifest["train_excluded"]["count"] == 1
    assert manifest["train_excluded"]["items"][0]["duplicates"] == items[5].id


def test_text_match_and_near_misses(data_dir):
    items = read_items(data_dir / "amazon8" / "test.jsonl")[:3]
    same_text = items[0].__class__(**{**items[0].to_dict(), "id": "x1", "title": "something else entirely"})
    other = items[1].__class__(**{**items[1].to_dict(), "id": "x2", "title": "a different product",
                                  "text": items[1].text + " extra words"})
    found = content_duplicates([other, same_text], items)
    assert [(n, twin.id, by) for n, twin, by in found] == [(1, items[0].id, "text")]
    assert normalize("  Hello,   WORLD!\n") == "hello world"


def test_tasks_lists_the_exclusions_and_strict_refuses_amazon25(capsys, data_dir):
    code, out, err = cli(capsys, "tasks", "--data-dir", data_dir)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("amazon25 "))
    task = load_task("amazon25", data_dir=data_dir)
    assert int(row.split()[4]) == len(task.train_excluded) > 0
    # the data README: 2 of the 100 items share a title with pool/ or amazon8/ items
    assert len({e["duplicates"] for e in task.train_excluded}) == 2
    code, _, err = cli(capsys, "--strict", "tasks", "--data-dir", data_dir)
    assert_one_line_error(code, err, "train.jsonl", "amazon25-")
