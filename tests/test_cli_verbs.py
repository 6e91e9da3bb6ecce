"""The command line as a whole: every verb answers --help, `export runs|eee|lm-eval` and their
old names (export-runs, ...) are one verb, `options BACKEND` reads the backend's declaration,
and every verb that reads a file or a store refuses a missing one the same way (exit 2, one
line naming the user's path, nothing written)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cli.app import build_parser
from tests._hostile import assert_one_line_error, cli, snapshot


def _verb_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    """Every verb the parser knows, as argv prefixes (('run',), ('export', 'runs'), ...)."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += _verb_paths(sub, (*prefix, name))
    return paths


VERBS = _verb_paths(build_parser())


def test_the_verb_table_holds_every_verb_and_alias():
    names = {" ".join(path) for path in VERBS}
    assert {"tasks", "run", "show", "compare", "verify", "suite", "report", "import", "curate", "finetune",
            "options", "export", "export runs", "export eee", "export lm-eval", "export-runs", "export-eee",
            "export-lm-eval"} <= names


@pytest.mark.parametrize("path", VERBS, ids=" ".join)
def test_every_verb_answers_help(path, capsys):
    code, out, err = cli(capsys, *path, "--help")
    assert code == 0 and not err
    assert out.startswith(f"usage: pricebench {' '.join(path)}")
    if path[0].startswith("export-"):
        assert f"alias of `pricebench export {path[0].removeprefix('export-')}`" in " ".join(out.split())


@pytest.fixture(scope="module")
def stored(tmp_path_factory, data_dir) -> tuple[Path, str]:
    """A store holding the human's amazon8 run (recorded replies: no model), and its run id."""
    from harness.cli import main

    store = tmp_path_factory.mktemp("verbs") / "runs"
    assert main(["--data-dir", str(data_dir), "--store", str(store), "run", "--task", "amazon8", "--model",
                 "reference:human"]) == 0
    (folder,) = store.iterdir()
    return store, folder.name


def _files(folder: Path) -> dict[str, dict | bytes]:
    """Every file under `folder` (JSON without its retrieval time, which is the clock's, and the
    owned-folder marker by the files it lists: its hashes cover that clock time too)."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".json":
            record = json.loads(path.read_text(encoding="utf-8"))
            record.pop("retrieved_timestamp", None)
            if isinstance(record.get("files"), dict) and "written_by" in record:
                record["files"] = sorted(record["files"])
            out[str(path.relative_to(folder))] = record
        else:
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def test_export_runs_and_its_alias_write_the_same_bundle(stored, data_dir, tmp_path, capsys):
    store, rid = stored
    common = ("--data-dir", data_dir, "--store", store)
    code, grouped, _ = cli(capsys, *common, "export", "runs", rid, tmp_path / "a.tar.gz")
    assert code == 0 and "1 run(s) (1 complete, 0 partial)" in grouped
    code, alias, _ = cli(capsys, *common, "export-runs", rid, tmp_path / "b.tar.gz")
    assert code == 0 and alias == grouped.replace("a.tar.gz", "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_export_eee_and_its_alias_write_the_same_files(stored, data_dir, tmp_path, capsys, monkeypatch):
    import harness.exports.eee as eee

    store, rid = stored
    common = ("--data-dir", data_dir, "--store", store)
    clock = iter([1_800_000_000.0, 1_800_000_007.0])        # the two exports in different seconds, always
    monkeypatch.setattr(eee, "time", SimpleNamespace(time=lambda: next(clock)))
    assert cli(capsys, *common, "export", "eee", rid, tmp_path / "a")[0] == 0
    assert cli(capsys, "export-eee", rid, tmp_path / "b", *common)[0] == 0          # options after the verb too
    files = _files(tmp_path / "a")
    assert any(name.endswith(".json") for name in files) and files == _files(tmp_path / "b")


def test_export_lm_eval_and_its_alias_write_the_same_files(data_dir, tmp_path, capsys):
    out = tmp_path / "lm"
    assert cli(capsys, "--data-dir", data_dir, "export", "lm-eval", "amazon8", out, "--shots", "2")[0] == 0
    first = snapshot(out)
    assert len(first) >= 2
    assert cli(capsys, "--data-dir", data_dir, "export-lm-eval", "amazon8", out, "--shots", "2")[0] == 0
    assert snapshot(out) == first          # its own files, rewritten byte for byte
    assert cli(capsys, "--data-dir", data_dir, "export-lm-eval", "amazon8", out)[0] == 0
    assert snapshot(out) != first          # ... and the alias does read its flags (zero shots now)


def test_options_lists_a_backends_declaration(capsys):
    code, out, err = cli(capsys, "options", "hf")
    assert code == 0 and not err
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ") and
             not line.startswith("   ")}
    assert lines["dtype"][1] == "yes" and "float32," in lines["dtype"] and "bfloat16," in lines["dtype"]
    assert lines["max_batch_tokens"][1:3] == ["no", "3072"]
    assert lines["batch_size"][1] == "varies"     # hashed where replies depend on the batch (quantized, bf16, GPU)
    code, out, _ = cli(capsys, "options", "hf:gemma-3-270m", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and rows["dtype"]["identity"] is True and rows["max_batch_tokens"]["identity"] is False
    assert "float32" in rows["dtype"]["expected"] and rows["max_new_tokens"]["default"] == 6


def test_options_of_each_backend_come_from_its_declaration(capsys):
    from harness.predictors import predictor_class

    for backend in ("reference", "baseline", "openai", "anthropic", "finetune"):
        code, out, _ = cli(capsys, "options", backend, "--json")
        runtime = {row["name"] for row in json.loads(out) if not row["identity"]}
        assert code == 0 and runtime == predictor_class(backend).Options.runtime_names()
    code, out, _ = cli(capsys, "options")
    assert code == 0 and "vllm" in out


def test_options_of_an_unknown_backend_is_one_line_with_a_suggestion(capsys):
    code, _, err = cli(capsys, "options", "nosuch")
    assert_one_line_error(code, err, "unknown backend 'nosuch'", "hf, vllm", exit_code=2)
    code, _, err = cli(capsys, "options", "vlm")
    assert_one_line_error(code, err, "did you mean 'vllm'?", exit_code=2)


# argv (MISSING: the user's missing path, RID: the stored run) -> the field the error names
MISSING_FILE = [
    (("run", "--task", "MISSING", "--model", "reference:human"), "task"),
    (("verify", "RID", "--task", "MISSING"), "task"),
    (("suite", "MISSING", "--dry-run"), "leaderboard"),
    (("suite", "MISSING"), "leaderboard"),
    (("report", "MISSING"), "leaderboard"),
    (("export", "runs", "MISSING", "OUT"), "leaderboard"),
    (("export-runs", "MISSING", "OUT"), "leaderboard"),
    (("export", "eee", "MISSING", "OUT"), "leaderboard"),
    (("export-eee", "MISSING", "OUT"), "leaderboard"),
    (("export", "lm-eval", "MISSING", "OUT"), "task"),
    (("export-lm-eval", "MISSING", "OUT"), "task"),
    (("import", "MISSING"), "bundle"),
    (("finetune", "MISSING"), "recipe"),
    (("finetune", "smollm2-135m-lora-cpu", "--task", "MISSING"), "task"),
    (("curate", "OUT", "--name", "x", "--raw", "MISSING"), "--raw"),
    (("--data-dir", "MISSING", "tasks"), "data_dir"),
]


@pytest.mark.parametrize("argv, field", MISSING_FILE, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_a_missing_input_file_is_exit_2_naming_the_users_path(argv, field, stored, data_dir, tmp_path, capsys):
    store, rid = stored
    missing = tmp_path / "not here" / "missing.yaml"
    out = tmp_path / "out"
    args = [{"MISSING": missing, "RID": rid, "OUT": out}.get(a, a) for a in argv]
    before = snapshot(store)
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", store, *args)
    assert_one_line_error(code, err, f"{missing}: field '{field}'", exit_code=2)
    assert not out.exists() and snapshot(store) == before


READS_A_STORE = [("show", "RID"), ("compare", "RID", "RID"), ("verify", "RID"), ("export", "runs", "RID", "OUT"),
                 ("export", "eee", "RID", "OUT"), ("report", "--out", "OUT"),
                 ("report", "--store", "STORE", "--out", "OUT")]


@pytest.mark.parametrize("argv", READS_A_STORE, ids=" ".join)
def test_a_store_to_read_that_is_absent_is_exit_2_naming_it(argv, stored, data_dir, tmp_path, capsys):
    store, rid = stored
    absent, out = tmp_path / "no store", tmp_path / "out"
    args = [{"RID": rid, "OUT": out, "STORE": store}.get(a, a) for a in argv]
    code, _, err = cli(capsys, "--data-dir", data_dir, "--store", absent, *args)
    assert_one_line_error(code, err, f"{absent}: field '--store'", "no such run store", exit_code=2)
    assert not absent.exists() and not out.exists()
