"""Several machines: two stores that each ran half of a leaderboard give, exported and imported
into a third or reported together, the leaderboard of one store that ran everything; the
precedence rules when several stores hold one run id."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests._hostile import cli

BOARD = """name: halves
tasks: [amazon8]
references:
  amazon8: [human, gpt-4o-mini]
models:
  - baseline:constant-mean
  - baseline:random
"""


@pytest.fixture(scope="module")
def stores(tmp_path_factory, data_dir) -> dict[str, Path]:
    """`full` ran the whole leaderboard; `refs` only its reference jobs, `base` only its baselines."""
    from harness.cli import main

    tmp = tmp_path_factory.mktemp("multistore")
    board = tmp / "halves.yaml"
    board.write_text(BOARD, encoding="utf-8")
    out = {"tmp": tmp, "board": board}
    for name, only in (("full", []), ("refs", ["--only", "reference:*"]), ("base", ["--only", "baseline:*"])):
        out[name] = tmp / name
        assert main(["--data-dir", str(data_dir), "--store", str(out[name]), "suite", str(board), "--no-report",
                     *only]) == 0
    return out


def _report(capsys, data_dir, out: Path, *args) -> str:
    code, _, err = cli(capsys, "--data-dir", data_dir, "report", *args, "--out", out)
    assert code == 0, err
    return (out / "leaderboard.csv").read_text(encoding="utf-8")


def _run_ids(store: Path) -> set[str]:
    return {p.name for p in store.iterdir()}


def test_two_halves_exported_imported_and_reported_give_the_leaderboard_of_one_store(stores, data_dir, tmp_path,
                                                                                        capsys):
    s, board = stores, stores["board"]
    assert _run_ids(s["refs"]) | _run_ids(s["base"]) == _run_ids(s["full"]) and not _run_ids(s["refs"]) & _run_ids(
        s["base"])
    merged = tmp_path / "merged"
    for half in ("refs", "base"):
        code, out, err = cli(capsys, "--data-dir", data_dir, "--store", s[half], "export-runs", board,
                             tmp_path / f"{half}.tar.gz")
        assert code == 0 and "skipped (nothing stored)" in err        # the other half's jobs
        code, out, _ = cli(capsys, "--store", merged, "import", tmp_path / f"{half}.tar.gz")
        assert code == 0 and "added" in out
    for rid in _run_ids(s["full"]):                  # every run's items and metrics, byte for byte
        for name in ("predictions.jsonl", "metrics.json"):
            assert (merged / rid / name).read_bytes() == (s["full"] / rid / name).read_bytes(), (rid, name)

    imported = _report(capsys, data_dir, tmp_path / "r-merged", board, "--store", merged)
    together = _report(capsys, data_dir, tmp_path / "r-both", board, "--store", s["refs"], "--store", s["base"])
    straight = _report(capsys, data_dir, tmp_path / "r-full", board, "--store", s["full"])
    assert imported == together == straight          # byte-identical, and to the store that ran everything
    assert len(list(csv.DictReader(io.StringIO(imported)))) == 4
    timings = (tmp_path / "r-merged" / "timings.csv").read_text(encoding="utf-8")    # each machine's throughput
    rows = list(csv.DictReader(io.StringIO(timings)))
    assert sorted(row["model"] for row in rows) == ["baseline:constant-mean", "baseline:random"]
    assert all(float(row["items_per_s"]) > 0 for row in rows)

    snapshot_before = {p: p.read_bytes() for p in merged.rglob("*") if p.is_file()}
    for half in ("refs", "base"):                    # importing again changes nothing
        code, out, _ = cli(capsys, "--store", merged, "import", tmp_path / f"{half}.tar.gz")
        assert code == 0 and "0 of" in out
    assert {p: p.read_bytes() for p in merged.rglob("*") if p.is_file()} == snapshot_before

    whole = _report(capsys, data_dir, tmp_path / "w-merged", "--store", merged)
    both = _report(capsys, data_dir, tmp_path / "w-both", "--store", s["refs"], "--store", s["base"])
    assert whole == both
    assert "All runs in 2 stores (4)" in (tmp_path / "w-both" / "index.html").read_text(encoding="utf-8")


def _copy(src: Path, dst: Path, rid: str, lines: slice | None = None) -> Path:
    shutil.copytree(src / rid, dst / rid)
    if lines is not None:
        text = (dst / rid / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (dst / rid / "predictions.jsonl").write_text("".join(text[lines]), encoding="utf-8")
        (dst / rid / "metrics.json").unlink()
    return dst / rid


def _row(text: str, model: str) -> dict | None:
    """A model's row of leaderboard.csv, but its rank (which depends on the other rows present)."""
    row = next((row for row in csv.DictReader(io.StringIO(text)) if row["model"] == model), None)
    return row and {k: v for k, v in row.items() if k != "rank"}


def _rid(store: Path, model: str) -> str:
    return next(p.parent.name for p in store.glob("*/manifest.json") if json.loads(p.read_text())["model"] == model)


def test_which_copy_a_report_over_several_stores_shows(stores, data_dir, tmp_path, capsys):
    s, board = stores, stores["board"]
    straight = _report(capsys, data_dir, tmp_path / "full", board, "--store", s["full"])
    human, mean = _rid(s["full"], "reference:human"), _rid(s["full"], "baseline:constant-mean")

    # a partial copy in the first store, the complete one in the second: the complete run is ranked
    partial = tmp_path / "partial"
    _copy(s["full"], partial, human, slice(0, 100))
    alone = _report(capsys, data_dir, tmp_path / "p", board, "--store", partial)
    assert _row(alone, "reference:human") is None
    both = _report(capsys, data_dir, tmp_path / "pf", board, "--store", partial, "--store", s["refs"])
    assert _row(both, "reference:human") == _row(straight, "reference:human")

    # two partial halves in two stores: merged item by item and scored like the straight run
    first, second = tmp_path / "first", tmp_path / "second"
    _copy(s["full"], first, mean, slice(0, 125))
    _copy(s["full"], second, mean, slice(125, None))
    halves = _report(capsys, data_dir, tmp_path / "h", board, "--store", first, "--store", second)
    assert _row(halves, "baseline:constant-mean") == _row(straight, "baseline:constant-mean")
    assert (first / mean / "metrics.json").exists() is False          # a report never writes a store

    # one run id, two different replies for an item: a visible conflict row, never ranked
    edited = tmp_path / "edited"
    folder = _copy(s["full"], edited, human)
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[3])
    record["raw"] = "about 12 dollars"
    lines[3] = json.dumps(record, ensure_ascii=False) + "\n"
    (folder / "predictions.jsonl").write_text("".join(lines), encoding="utf-8")
    for args in ((board,), ()):                       # the leaderboard, and the store-wide report
        out = tmp_path / f"c{len(args)}"
        text = _report(capsys, data_dir, out, *args, "--store", s["refs"], "--store", edited)
        assert _row(text, "reference:human") is None
        html = (out / "index.html").read_text(encoding="utf-8")
        assert "conflict" in html and f"item {record['id']}: field &#39;raw&#39; differs" in html
