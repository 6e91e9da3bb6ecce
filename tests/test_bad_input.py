"""Bad input gets one clear error naming file, line and field, and nothing is run or written."""
from __future__ import annotations

import json
import shutil

import pytest

from harness.cli import main

LINE = 7  # the corrupted line of amazon8/test.jsonl (1-based)


def _mutate(obj: dict, case: str):
    if case == "missing field":
        del obj["price"]
    elif case == "extra field":
        obj["colour"] = "red"
    elif case == "non-numeric price":
        obj["price"] = "12.99"
    elif case == "boolean price":
        obj["price"] = True
    elif case == "negative price":
        obj["price"] = -3.5
    elif case == "absurd price":
        obj["price"] = 1e9
    elif case == "empty text":
        obj["text"] = "   "
    elif case == "duplicate id":
        obj["id"] = "amazon8-0000"
    return json.dumps(obj).encode()


CASES = {  # case -> (field named in the error, words in the error)
    "missing field": ("price", "missing field"),
    "extra field": ("colour", "unknown field"),
    "non-numeric price": ("price", "must be a number"),
    "boolean price": ("price", "must be a number"),
    "negative price": ("price", "positive"),
    "absurd price": ("price", "absurd"),
    "empty text": ("text", "empty"),
    "duplicate id": ("id", "duplicate id"),
    "invalid utf-8": (None, "invalid UTF-8"),
    "invalid json": (None, "invalid JSON"),
}


@pytest.fixture
def bad_data(tmp_path, data_dir):
    def make(case: str):
        root = tmp_path / "data"
        (root / "amazon8").mkdir(parents=True)
        shutil.copytree(data_dir / "pool", root / "pool")
        shutil.copy(data_dir / "amazon8" / "references.jsonl", root / "amazon8")
        lines = (data_dir / "amazon8" / "test.jsonl").read_bytes().split(b"\n")
        if case == "invalid utf-8":
            lines[LINE - 1] = lines[LINE - 1].replace(b"\"title\": \"", b"\"title\": \"\xff\xfe", 1)
        elif case == "invalid json":
            lines[LINE - 1] = lines[LINE - 1][:-2]
        else:
            lines[LINE - 1] = _mutate(json.loads(lines[LINE - 1]), case)
        (root / "amazon8" / "test.jsonl").write_bytes(b"\n".join(lines))
        return root
    return make


@pytest.mark.parametrize("case", CASES)
def test_bad_item_is_named_and_nothing_is_written(case, bad_data, tmp_path, capsys):
    root = bad_data(case)
    store = tmp_path / "runs"
    code = main(["--data-dir", str(root), "--store", str(store), "run", "--task", "amazon8",
                 "--model", "reference:human"])
    err = capsys.readouterr().err
    field, words = CASES[case]
    assert code == 2
    assert f"amazon8/test.jsonl:{LINE}:" in err
    if field:
        assert f"field '{field}'" in err
    assert words in err
    assert not store.exists()


def test_bad_task_yaml_names_line_and_field(tmp_path, data_dir, capsys):
    from harness.tasks import TASKS_DIR

    spec = (TASKS_DIR / "amazon8.yaml").read_text().replace("{text}\\n\\nPrice is $", "\\n\\nPrice is $", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(spec)
    line = next(i for i, l in enumerate(spec.splitlines(), 1) if l.strip().startswith("base:"))
    code = main(["--data-dir", str(data_dir), "--store", str(tmp_path / "runs"), "run", "--task", str(path),
                 "--model", "reference:human"])
    err = capsys.readouterr().err
    assert code == 2 and f"broken.yaml:{line}: field 'prompts.base': must contain {{text}}" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, words", [
    (["run", "--task", "nope", "--model", "reference:human"], "unknown task 'nope'"),
    (["run", "--task", "amazon8", "--model", "human"], "must be 'backend:name'"),
    (["run", "--task", "amazon8", "--model", "foo:bar"], "unknown backend 'foo'"),
    (["run", "--task", "amazon8", "--model", "reference:nobody"], "no recorded run 'nobody'"),
    (["run", "--task", "amazon8", "--model", "reference:human", "--slice", "x"], "bad slice"),
])
def test_bad_cli_input(argv, words, data_dir, tmp_path, capsys):
    code = main(["--data-dir", str(data_dir), "--store", str(tmp_path / "runs"), *argv])
    assert code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
