"""The run record (harness/runs/record.py, manifest_io.py): today's manifests read with their run ids,
a round trip keeps every field (unknown ones too), damage is named by file and field and never
raises, and manifest.json has one writer."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.runs.manifest_io import manifest_json, read_manifest
from harness.runs.record import FORMAT_VERSION, RunManifest, Session
from harness.runs.results import load_run
from harness.runs.store import RunFolder, RunStore, run_id

HARNESS = Path(__file__).resolve().parent.parent / "harness"


@pytest.fixture(scope="module")
def human(tmp_path_factory, data_dir) -> Path:
    """The folder of a real run (the human on amazon8), as today's runner writes it."""
    store = tmp_path_factory.mktemp("record") / "runs"
    assert main(["--data-dir", str(data_dir), "--store", str(store), "run", "--task", "amazon8", "--model",
                 "reference:human", "--json"]) == 0
    (folder,) = RunStore(store).folders()
    return folder.path


def _copy(human: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / human.name
    shutil.copytree(human, folder)
    return folder


def _edit(folder: Path, change) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def test_a_new_manifest_says_its_format_and_reads_back_typed(human):
    written = json.loads((human / "manifest.json").read_text("utf-8"))
    assert next(iter(written)) == "format_version" and written["format_version"] == FORMAT_VERSION
    seen = RunFolder(human).inspect()
    assert seen.state == "complete" and seen.manifest_problems == []
    man = seen.manifest
    assert isinstance(man, RunManifest) and all(isinstance(s, Session) for s in man.sessions)
    assert man.run_id == human.name == run_id(man.identity)
    assert (man.task, man.model, man.kind) == ("amazon8", "reference:human", "human")
    assert man.label == "Human (course author)"
    assert len(man.item_ids) == man.n_items == 250 and man.sessions[0].items == 250
    assert man.versions["pricebench"] and man.hardware["cpus"] >= 1 and man.timings.predict_s >= 0


def test_an_old_manifest_without_a_version_reads_as_version_1_with_its_run_id(human, tmp_path, data_dir, capsys):
    folder = _copy(human, tmp_path)
    old = _edit(folder, lambda m: m.pop("format_version"))
    seen = RunFolder(folder).inspect()
    assert seen.state == "complete" and seen.manifest_problems == []
    assert seen.manifest.run_id == folder.name == run_id(old["identity"]) and seen.manifest.format_version is None
    assert seen.manifest.as_json() == old                       # read as it is: nothing added, nothing lost
    before = (folder / "manifest.json").read_bytes()
    code = main(["--data-dir", str(data_dir), "--store", str(folder.parent), "run", "--task", "amazon8", "--model",
                 "reference:human", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["run_id"] == folder.name and out["cached"] is True     # the same id: found, not re-run
    assert (folder / "manifest.json").read_bytes() == before                       # and not rewritten
    assert load_run(folder).summary().startswith("Human (course author) on amazon8: MAE $126.55")


def test_a_round_trip_keeps_every_field_and_unknown_ones(human, tmp_path):
    folder = _copy(human, tmp_path)

    def add_foreign(m):
        m["written_by_a_newer_pricebench"] = {"nested": [1, 2.5, None]}
        m["sessions"][0]["gpu_seconds"] = 12
        m["mixed"] = [{"session": 1, "differs": {"batch_size": [8, 16]}, "note": "kept"}]
    _edit(folder, add_foreign)
    first = RunFolder(folder).inspect().manifest
    RunFolder(folder).write_manifest(first)
    again = RunFolder(folder).inspect().manifest
    assert again == first and again.as_json() == first.as_json()
    written = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert written["written_by_a_newer_pricebench"] == {"nested": [1, 2.5, None]}
    assert written["sessions"][0]["gpu_seconds"] == 12 and written["mixed"][0]["note"] == "kept"
    assert written["format_version"] == FORMAT_VERSION      # the writer stamps the format it wrote


def test_a_typed_record_written_and_read_is_equal():
    record = RunManifest(run_id="0" * 16, task="t", model="m", identity={"task": {"name": "t"}}, item_ids=["a"],
                         sessions=[Session(started="x", items=1, prepare_s=0.5, environment={"device": "cpu"})],
                         usage={"prompt_tokens": 7, "cost_usd": 0.25}, cost_usd=0.25)
    back, problems = read_manifest(json.dumps({"format_version": 1, **record.as_json()}).encode(), "m.json")
    assert problems == [] and back.as_json() == manifest_json(record) and back.sessions == record.sessions
    assert back.usage["prompt_tokens"] == 7 and isinstance(back.usage["prompt_tokens"], int)   # never coerced


DAMAGE = {   # case -> (manifest bytes or object, texts the problems name, whether a record comes back)
    "not an object": (b"[1, 2]", ["not a JSON object"], False),
    "not JSON": (b"{not json", ["unreadable"], False),
    "not UTF-8": (b"\xff\xfe{}", ["unreadable"], False),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, ["unreadable"], False),
    "a newer format": ({"format_version": 99, "run_id": "x"}, ["field 'format_version'", "99"], False),
    "sessions not a list": ({"sessions": {"a": 1}}, ["field 'sessions': not a list"], True),
    "a session not an object": ({"sessions": [7, {"items": 3}]}, ["field 'sessions.0': not an object"], True),
    "a session field of the wrong type": ({"sessions": [{"prepare_s": "slow", "items": 2}]},
                                          ["field 'sessions.0.prepare_s': not a number"], True),
    "non-finite numbers": ({"cost_usd": float("nan"), "timings": {"predict_s": float("inf")}},
                           ["field 'cost_usd': not a finite number", "field 'timings.predict_s': not a finite number"],
                           True),
    "texts of the wrong type": ({"label": ["a"], "kind": 7, "n_items": "250", "versions": ["x"]},
                                ["field 'label': not a text", "field 'kind': not a text",
                                 "field 'n_items': not an integer", "field 'versions': not an object"], True),
    "a boolean for a number": ({"n_items": True}, ["field 'n_items': not an integer"], True),
    "missing fields": ({}, [f"field '{name}': missing" for name in ("run_id", "task", "model", "identity",
                                                                    "item_ids")], True),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_manifest_is_named_by_file_and_field_and_never_raises(case):
    data, texts, readable = DAMAGE[case]
    where = "runs/ab12ab12ab12ab12/manifest.json"
    record, problems = read_manifest(data, where)
    assert (record is not None) == readable
    assert problems and all(p.startswith(f"{where}: ") for p in problems)
    for text in texts:
        assert any(text in p for p in problems), (text, problems)
    if record is not None:         # what fits is kept; what does not is left out, never half-read
        assert all(getattr(record, name) is None for name in ("label", "kind", "n_items", "cost_usd"))


def test_a_damaged_field_in_a_store_is_named_and_the_run_stays_usable(human, tmp_path, capsys):
    folder = _copy(human, tmp_path)
    _edit(folder, lambda m: m.update(label=["not", "a", "name"], timings="fast",
                                     sessions=[m["sessions"][0], "not a session"]))
    seen = RunFolder(folder).inspect()
    assert seen.state == "complete" and seen.problems == []
    where = f"{folder / 'manifest.json'}: "
    assert [p.removeprefix(where) for p in seen.manifest_problems] == [
        "field 'sessions.1': not an object", "field 'label': not a text", "field 'timings': not an object"]
    assert seen.manifest.label is None and seen.manifest.display_name == "reference:human"
    assert len(seen.manifest.sessions) == 1 and seen.manifest.run_id == folder.name
    before = (folder / "manifest.json").read_bytes()
    assert main(["--store", str(folder.parent), "show", folder.name[:6]]) == 0        # shown, and the field named
    out, err = capsys.readouterr()
    assert "reference:human on amazon8: MAE $126.55" in out and "field 'label': not a text" in err
    assert (folder / "manifest.json").read_bytes() == before                           # reading never rewrites


def test_a_manifest_that_is_not_an_object_leaves_the_run_damaged(human, tmp_path):
    folder = _copy(human, tmp_path)
    (folder / "manifest.json").write_text("[]", encoding="utf-8")
    seen = RunFolder(folder).inspect()
    assert seen.state == "damaged" and seen.manifest is None
    assert seen.problems == [f"{folder / 'manifest.json'}: not a JSON object"]


# --- the one-writer rule ------------------------------------------------------------------------------
WRITERS = {"write_json_atomic", "atomic_write", "atomic_file", "write_text", "write_bytes", "open", "replace",
           "rename", "copy", "copyfile", "copy2", "move"}
ADAPTER_CACHE = {"finetune/adapters.py", "finetune/shipping.py"}     # an adapter's manifest.json: another format


def _manifest_writes(tree) -> list[str]:
    """Calls that write (or move into place) a file whose path names a manifest, as source text."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name not in WRITERS:
            continue
        target = " ".join(ast.unparse(a) for a in node.args[:2])
        if isinstance(func, ast.Attribute) and name in ("write_text", "write_bytes", "replace", "rename"):
            target += " " + ast.unparse(func.value)
        if "manifest" in target.lower():
            found.append(ast.unparse(node))
    return found


def _write_manifest_calls(tree) -> list[str]:
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute) and n.func.attr == "write_manifest"]


def test_only_the_run_folder_writes_a_run_manifest():
    """No module outside harness/runs writes a manifest.json or calls a run folder's manifest writer, and
    inside it only RunFolder.write_manifest writes the file (the typed record, atomically)."""
    for path in sorted(HARNESS.rglob("*.py")):
        name = path.relative_to(HARNESS).as_posix()
        text = path.read_text("utf-8")
        tree = ast.parse(text)
        if name in ADAPTER_CACHE:       # an adapter folder's own manifest, never a run folder's
            assert "RunFolder" not in text and "RunStore" not in text, name
            continue
        writes = _manifest_writes(tree)
        if name == "runs/store.py":
            assert writes == ["write_json_atomic(self.path / MANIFEST, manifest_json(manifest))"], writes
            continue
        assert writes == [], (name, writes)
        if not name.startswith("runs/"):
            assert _write_manifest_calls(tree) == [], name
    tree = ast.parse((HARNESS / "runs" / "store.py").read_text("utf-8"))
    writer = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "write_manifest")
    assert ast.unparse(writer.args.args[1].annotation) == "RunManifest"


def test_the_training_record_is_typed_and_leaves_an_odd_figure_out():
    from types import SimpleNamespace

    from harness.finetune.record import training_record

    recipe = SimpleNamespace(name="r", path=None, identity=lambda: {"lr": 1e-4}, base="hf:x", method="lora",
                             objective="causal")
    adapter = {"training": {"steps": 6, "train_s": 3.5, "tokens_per_s": "fast", "curve": [{"step": 1, "loss": 2.0}],
                            "trainable_parameters": {"trainable": 10, "total": 100}},
               "data": {"train": 8, "validation": "many"}}
    record = training_record(recipe, {"id": "abc", "checkpoint": None, "weights": "/nowhere"}, adapter)
    assert record == {"adapter_id": "abc", "recipe": "r", "settings": {"lr": 1e-4}, "base": "hf:x", "method": "lora",
                      "objective": "causal", "steps": 6, "train_s": 3.5, "trainable_parameters": 10,
                      "total_parameters": 100, "train_items": 8, "curve": [{"step": 1, "loss": 2.0}]}
