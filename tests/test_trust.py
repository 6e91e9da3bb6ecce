"""Imported and stored results are recomputed, never trusted (harness/runs/recheck.py): a bundle whose figures its
own predictions contradict is refused, a report marks such a stored run instead of printing it, a store to read
that does not exist is an error, and a missing input file is one line naming the path as typed (exit 2)."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tests._hostile import assert_one_line_error, cli, snapshot
from tests.conftest import REPO
from tests.test_bundles import _bundle, _run_files

HUMAN = ("run", "--task", "amazon8", "--model", "reference:human")
GPT = ("run", "--task", "amazon8", "--model", "reference:gpt-4o-mini")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir) -> tuple[Path, str, str]:
    """A store with the recorded runs of the human and GPT-4o mini: (store, human's id, GPT-4o mini's id)."""
    from harness.cli import main

    store = tmp_path_factory.mktemp("trust") / "runs"
    ids = []
    for argv in (HUMAN, GPT):
        code = main(["--data-dir", str(data_dir), "--store", str(store), *argv, "--json"])
        assert code == 0
    for model in ("reference:human", "reference:gpt-4o-mini"):
        ids.append(next(p.parent.name for p in store.glob("*/manifest.json")
                        if json.loads(p.read_text())["model"] == model))
    return store, ids[0], ids[1]


def _edit_json(data: bytes, **changes) -> bytes:
    return json.dumps({**json.loads(data), **changes}).encode()


def _edit_record(data: bytes, number: int, **changes) -> bytes:
    lines = data.decode().splitlines(keepends=True)
    lines[number] = json.dumps({**json.loads(lines[number]), **changes}, ensure_ascii=False) + "\n"
    return "".join(lines).encode()


def _forgeries(files: dict[str, bytes], rid: str) -> dict[str, tuple[dict, list[str]]]:
    """name -> (the bundle's files, every checksum recomputed: forged, not damaged; what the error names)."""
    metrics, preds, manifest = (f"runs/{rid}/{n}" for n in ("metrics.json", "predictions.jsonl", "manifest.json"))
    m, first = json.loads(files[metrics]), json.loads(files[preds].splitlines()[0])
    partial = {k: v for k, v in files.items() if k != metrics}
    return {
        "a better MAE": ({**files, metrics: _edit_json(files[metrics], mae=99.0)}, ["metrics.json", "field 'mae'"]),
        "a CI off by a millionth": ({**files, metrics: _edit_json(files[metrics],
                                                                 mae_ci_high=m["mae_ci_high"] * 1.000001)},
                                    ["field 'mae_ci_high'"]),
        "more hits": ({**files, metrics: _edit_json(files[metrics], hit_rate=60.0)}, ["field 'hit_rate'"]),
        "a count": ({**files, metrics: _edit_json(files[metrics], green=m["green"] + 1)}, ["field 'green'"]),
        "the 2025 figures": ({**files, metrics: _edit_json(files[metrics], r2=0.99)}, ["field 'r2'"]),
        "an item's error": ({**files, preds: _edit_record(files[preds], 0, error=first["error"] / 2)},
                            ["predictions.jsonl", f"item {first['id']}", "field 'error'"]),
        "an item's colour, partial run": ({**partial, preds: _edit_record(files[preds], 0, colour="green", error=0.0)},
                                          ["predictions.jsonl", "field 'error'"]),
        "a guess not its price": ({**files, preds: _edit_record(files[preds], 0, guess=first["truth"],
                                                                 error=0.0, sle=0.0, colour="green")},
                                  ["field 'guess'"]),
        "a cost": ({**files, manifest: _edit_json(files[manifest], cost_usd=12.5)},
                   ["manifest.json", "field 'cost_usd'"]),
        "a status": ({**files, manifest: _edit_json(files[manifest], status="complete-with-failures")},
                     ["field 'status'"]),
    }


def test_forged_figures_are_refused_at_import_and_nothing_is_written(runs, tmp_path, capsys):
    store, rid, gpt = runs
    files = {**_run_files(store, rid), **_run_files(store, gpt)}        # two runs: all or nothing
    target = tmp_path / "target"
    shutil.copytree(store / gpt, target / gpt)
    before = snapshot(target)
    for name, (forged, needles) in _forgeries(files, rid).items():
        bundle = _bundle(tmp_path / f"{name.replace(' ', '-')}.tar.gz", forged)
        code, _, err = cli(capsys, "--store", target, "import", bundle)
        assert_one_line_error(code, err, str(bundle), f"run {rid}", *needles, exit_code=2)
        assert snapshot(target) == before, name
        code, _, err = cli(capsys, "--store", tmp_path / "new", "import", bundle)
        assert code == 2 and not (tmp_path / "new").exists(), name
    noise = json.loads(files[f"runs/{rid}/metrics.json"])["mae"] * (1 + 1e-12)     # float noise is not a forgery
    fine = _bundle(tmp_path / "noise.tar.gz", {**files, f"runs/{rid}/metrics.json": _edit_json(
        files[f"runs/{rid}/metrics.json"], mae=noise)})
    code, out, err = cli(capsys, "--store", target, "import", fine)
    assert code == 0 and f"run {rid} (complete): added" in out, err


BOARD = """name: trust
tasks: [amazon8]
references:
  amazon8: [human, gpt-4o-mini]
"""


def _csv_models(out: Path) -> set[str]:
    return {row["model"] for row in csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text(encoding="utf-8")))}


def test_a_report_recomputes_each_run_and_marks_one_its_predictions_contradict(runs, data_dir, tmp_path, capsys):
    store, rid, gpt = runs
    board = tmp_path / "trust.yaml"
    board.write_text(BOARD, encoding="utf-8")
    genuine, forged = tmp_path / "genuine", tmp_path / "forged"
    shutil.copytree(store / rid, genuine / rid)
    shutil.copytree(store / gpt, forged / gpt)
    metrics = json.loads((forged / gpt / "metrics.json").read_text())
    (forged / gpt / "metrics.json").write_text(json.dumps({**metrics, "mae": 12.34}))      # a better MAE, typed in
    for args in ((board,), ()):                       # the leaderboard, and the store-wide report
        out = tmp_path / f"r{len(args)}"
        code, _, err = cli(capsys, "--data-dir", data_dir, "report", *args, "--store", genuine, "--store", forged,
                           "--out", out)
        assert code == 0, err
        assert _csv_models(out) == {"reference:human"}            # the forged run is not ranked
        html = (out / "index.html").read_text(encoding="utf-8")
        assert "$12.34" not in html and "12.34" not in (out / "leaderboard.csv").read_text(encoding="utf-8")
        assert "damaged" in html and f"{gpt}" in html and "field &#39;mae&#39;: says 12.34, but its predictions " \
            f"give {metrics['mae']:.10g}" in html
    # a record's score edited (its metrics left alone): the same
    lines = (forged / gpt / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (forged / gpt / "metrics.json").write_text(json.dumps(metrics))
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "colour": "green" if first["colour"] != "green" else "red"}) + "\n"
    (forged / gpt / "predictions.jsonl").write_text("".join(lines), encoding="utf-8")
    code, _, err = cli(capsys, "--data-dir", data_dir, "report", "--store", forged, "--out", tmp_path / "r")
    assert code == 0 and _csv_models(tmp_path / "r") == set(), err
    assert f"item {first['id']}: says" in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("verb", ["report", "report-board", "show", "compare", "verify", "export-runs",
                                  "export-runs-board", "export-eee", "export-eee-board", "two-stores", "env"])
def test_a_store_to_read_that_does_not_exist_is_an_error(verb, runs, data_dir, tmp_path, capsys, monkeypatch):
    store, rid, _ = runs
    monkeypatch.chdir(tmp_path)
    Path("board.yaml").write_text(BOARD, encoding="utf-8")
    argv = {"report": ["report"], "report-board": ["report", "board.yaml"], "show": ["show", rid],
            "compare": ["compare", rid, rid], "verify": ["verify", rid],
            "export-runs": ["export-runs", rid, "b.tar.gz"],
            "export-runs-board": ["export-runs", "board.yaml", "b.tar.gz"], "export-eee": ["export-eee", rid, "eee"],
            "export-eee-board": ["export-eee", "board.yaml", "eee"], "two-stores": ["report", "--store", str(store)],
            "env": ["report"]}[verb]
    stores = ["--store", "missing-dir/"]
    if verb == "env":
        monkeypatch.setenv("PRICEBENCH_STORE", "missing-dir/")
        stores = []
    code, _, err = cli(capsys, "--data-dir", data_dir, *stores, *argv)
    field = "PRICEBENCH_STORE" if verb == "env" else "--store"
    assert_one_line_error(code, err, f"missing-dir/: field '{field}': no such run store", exit_code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.yaml"]       # no report, bundle or export


def test_writing_verbs_still_create_their_store(runs, data_dir, tmp_path, capsys, monkeypatch):
    store, rid, _ = runs
    monkeypatch.chdir(tmp_path)
    Path("board.yaml").write_text(BOARD, encoding="utf-8")
    assert cli(capsys, "--data-dir", data_dir, "--store", "dry", "suite", "board.yaml", "--dry-run")[0] == 0
    assert not Path("dry").exists()                   # a plan for a new store: everything to run
    assert cli(capsys, "--data-dir", data_dir, "--store", "a", *HUMAN)[0] == 0
    assert cli(capsys, "--store", store, "export-runs", rid, "b.tar.gz")[0] == 0
    code, out, _ = cli(capsys, "--store", "b", "import", "b.tar.gz")
    assert code == 0 and (tmp_path / "a" / rid / "metrics.json").exists() and (tmp_path / "b" / rid).is_dir()
    code, _, err = cli(capsys, "--data-dir", data_dir, "report", "board.yaml", "--out", "r")   # ./runs: nothing ran yet
    assert code == 0, err
    text = (REPO / "tasks" / "amazon8.yaml").read_text(encoding="utf-8")      # a task of published figures only
    Path("hubonly.yaml").write_text(text[:text.index("  local:")] + text[text.index("  hub:"):], encoding="utf-8")
    Path("pub.yaml").write_text("name: pub\ntasks: [hubonly.yaml]\nreferences:\n  hubonly: [human]\n", encoding="utf-8")
    code, _, err = cli(capsys, "--store", "fresh", "suite", "pub.yaml", "--out", "p")    # no job writes a run
    assert code == 0 and "$126.55" in Path("p/index.html").read_text(encoding="utf-8"), err


@pytest.mark.parametrize("argv, kind", [
    (["import", "{}.tar.gz"], "bundle"),
    (["report", "{}.yaml"], "leaderboard"),
    (["suite", "{}.yaml"], "leaderboard"),
    (["run", "--task", "{}.yaml", "--model", "reference:human"], "task"),
    (["export-lm-eval", "{}.yaml", "out/"], "task"),
    (["finetune", "{}.yaml"], "recipe"),
    (["export-runs", "{}.yaml", "b.tar.gz"], "leaderboard"),
    (["export-eee", "{}.yaml", "eee/"], "leaderboard"),
])
def test_a_missing_input_file_is_one_line_naming_the_path_as_typed(argv, kind, data_dir, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    typed = "./nowhere/NOFILE"
    argv = [a.format(typed) for a in argv]
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", "runs", *argv)
    path = next(a for a in argv if a.startswith(typed))
    assert_one_line_error(code, err, f"error: {path}: field '{kind}': {kind} file not found", exit_code=2)
    assert list(tmp_path.iterdir()) == []             # nothing written: no store, no output folder
