"""Imported and stored results are recomputed, never trusted (harness/recheck.py): a bundle whose figures its
own predictions contradict is refused, a report marks such a stored run instead of printing it, a store to read
that does not exist is an error, and a missing input file is one line naming the path as typed (exit 2)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests._hostile import assert_one_line_error, cli, snapshot
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

