"""Run bundles: export-runs / import between stores; partial runs merge item by item; every
tampered bundle is refused with one line and leaves the store byte for byte as it was."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from harness.runs.bundles import archive
from tests._hostile import assert_one_line_error, cli, snapshot
from tests._suite_support import FAIL_AFTER_ENV, register, small_task

HUMAN = ("run", "--task", "amazon8", "--model", "reference:human")
GPT = ("run", "--task", "amazon8", "--model", "reference:gpt-4o-mini")


@pytest.fixture(scope="module")
def human(tmp_path_factory, data_dir) -> tuple[Path, str]:
    """A store holding the straight (uninterrupted) runs of the human and GPT-4o mini; the human's id."""
    from harness.cli import main

    store = tmp_path_factory.mktemp("straight") / "runs"
    for argv in (HUMAN, GPT):
        assert main(["--data-dir", str(data_dir), "--store", str(store), *argv, "--json"]) == 0
    manifest = next(p for p in store.glob("*/manifest.json") if '"reference:human"' in p.read_text())
    return store, manifest.parent.name


def _copy_run(src: Path, store: Path, rid: str, lines: slice | None = None, metrics: bool = True) -> Path:
    """A copy of run `rid` in `store`, optionally cut to some of its predictions lines (then partial)."""
    folder = store / rid
    shutil.copytree(src / rid, folder)
    if lines is not None:
        text = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (folder / "predictions.jsonl").write_text("".join(text[lines]), encoding="utf-8")
    if not metrics:
        (folder / "metrics.json").unlink()
    return folder


def test_export_import_round_trip_is_byte_identical_and_a_second_import_changes_nothing(human, tmp_path, capsys):
    store, rid = human
    bundle = tmp_path / "runs.tar.gz"
    code, out, _ = cli(capsys, "--store", store, "export-runs", rid[:6], bundle)
    assert code == 0 and "1 run(s) (1 complete, 0 partial)" in out
    again = tmp_path / "again.tar.gz"
    assert cli(capsys, "--store", store, "export-runs", rid, again)[0] == 0
    assert bundle.read_bytes() == again.read_bytes()            # deterministic: the same runs, the same bytes
    with tarfile.open(bundle) as tar:
        assert tar.getnames() == [archive.INDEX] + [f"runs/{rid}/{n}" for n in archive.RUN_FILES]
    target = tmp_path / "other"
    code, out, _ = cli(capsys, "--store", target, "import", bundle)
    assert code == 0 and f"run {rid} (complete): added" in out
    for name in archive.RUN_FILES:
        assert (target / rid / name).read_bytes() == (store / rid / name).read_bytes()
    before = snapshot(target)
    code, out, _ = cli(capsys, "--store", target, "import", bundle)
    assert code == 0 and "identical: nothing to do" in out and "0 of 1 run(s) written" in out
    assert snapshot(target) == before


def test_two_partial_halves_merge_into_the_straight_run(human, tmp_path, capsys):
    store, rid = human
    first, second = tmp_path / "first", tmp_path / "second"
    _copy_run(store, first, rid, slice(0, 125), metrics=False)
    _copy_run(store, second, rid, slice(125, None), metrics=False)
    bundle = tmp_path / "second.tar.gz"
    code, out, _ = cli(capsys, "--store", second, "export-runs", rid, bundle)
    assert code == 0 and "(0 complete, 1 partial)" in out
    code, out, _ = cli(capsys, "--store", first, "import", bundle)
    assert code == 0 and f"run {rid} (complete): items merged: the run is now complete" in out
    for name in ("metrics.json", "predictions.jsonl"):
        assert (first / rid / name).read_bytes() == (store / rid / name).read_bytes(), name
    manifest = json.loads((first / rid / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["merged"][0]["items"] == 125
    assert manifest["label"] == "Human (course author)"
    code, out, _ = cli(capsys, "--store", first, "show", rid)
    assert code == 0 and "MAE $126.55" in out and "PARTIAL" not in out


def test_odd_but_well_formed_fields_of_a_partial_bundle_do_not_break_a_merge(human, tmp_path, capsys):
    store, rid = human
    first, second = tmp_path / "first", tmp_path / "second"
    _copy_run(store, first, rid, slice(0, 125), metrics=False)
    folder = _copy_run(store, second, rid, slice(125, None), metrics=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sessions"] = [{"prepare_s": "slow", "predict_s": 1e308}, "not a session", 7]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    lines = (folder / "predictions.jsonl").read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    record["usage"] = ["tokens", None]
    lines[0] = json.dumps(record) + "\n"
    (folder / "predictions.jsonl").write_text("".join(lines))
    assert cli(capsys, "--store", second, "export-runs", rid, tmp_path / "odd.tar.gz")[0] == 0
    code, out, err = cli(capsys, "--store", first, "import", tmp_path / "odd.tar.gz")
    assert code == 0 and "now complete" in out, err
    assert (first / rid / "metrics.json").read_bytes() == (store / rid / "metrics.json").read_bytes()
    timings = json.loads((first / rid / "manifest.json").read_text())["timings"]
    assert timings["prepare_s"] == json.loads((store / rid / "manifest.json").read_text())["timings"]["prepare_s"]


def test_partial_merges_that_stay_partial_and_partial_against_complete(human, tmp_path, capsys):
    store, rid = human
    low, mid = tmp_path / "low", tmp_path / "mid"
    _copy_run(store, low, rid, slice(0, 100), metrics=False)
    _copy_run(store, mid, rid, slice(50, 200), metrics=False)
    assert cli(capsys, "--store", mid, "export-runs", rid, tmp_path / "mid.tar.gz")[0] == 0
    code, out, _ = cli(capsys, "--store", low, "import", tmp_path / "mid.tar.gz")
    assert code == 0 and "(partial): items merged into the store's partial copy" in out
    code, out, _ = cli(capsys, "--store", low, "show", rid)
    assert "PARTIAL: 200 of 250 items" in out
    # a partial bundle into a store holding the complete run: nothing to do
    before = snapshot(store)
    code, out, _ = cli(capsys, "--store", store, "import", tmp_path / "mid.tar.gz")
    assert code == 0 and "already holds every item" in out and snapshot(store) == before
    # the complete run into the partial store: replaced, byte for byte
    assert cli(capsys, "--store", store, "export-runs", rid, tmp_path / "full.tar.gz")[0] == 0
    code, out, _ = cli(capsys, "--store", low, "import", tmp_path / "full.tar.gz")
    assert code == 0 and "partial copy replaced by the complete run" in out
    for name in archive.RUN_FILES:
        assert (low / rid / name).read_bytes() == (store / rid / name).read_bytes()


def test_a_crashed_run_is_completed_by_the_bundle_of_a_straight_one(data_dir, tmp_path, capsys, monkeypatch):
    register()
    task = small_task(tmp_path, data_dir, n=12)
    run = ("--data-dir", data_dir, "run", "--task", task, "--model", "testonly:noisy", "--json")
    monkeypatch.setenv(FAIL_AFTER_ENV, "5")
    assert cli(capsys, "--store", tmp_path / "crashed", *run)[0] == 1            # 5 items saved, then a crash
    monkeypatch.delenv(FAIL_AFTER_ENV)
    code, out, _ = cli(capsys, "--store", tmp_path / "straight", *run)
    rid = json.loads(out)["run_id"]
    assert cli(capsys, "--store", tmp_path / "straight", "export-runs", rid, tmp_path / "b.tar.gz")[0] == 0
    code, out, _ = cli(capsys, "--store", tmp_path / "crashed", "import", tmp_path / "b.tar.gz")
    assert code == 0 and "replaced by the complete run" in out
    assert (tmp_path / "crashed" / rid / "metrics.json").read_bytes() == \
        (tmp_path / "straight" / rid / "metrics.json").read_bytes()


def test_the_same_run_id_with_another_reply_or_identity_is_refused(human, tmp_path, capsys):
    store, rid = human
    other = tmp_path / "other"
    folder = _copy_run(store, other, rid)
    lines = (folder / "predictions.jsonl").read_text().splitlines(keepends=True)
    record = json.loads(lines[7])
    record["raw"] = "I would say 99"
    lines[7] = json.dumps(record, ensure_ascii=False) + "\n"
    (folder / "predictions.jsonl").write_text("".join(lines))
    assert cli(capsys, "--store", other, "export-runs", rid, tmp_path / "other.tar.gz")[0] == 0
    before = snapshot(store)
    code, _, err = cli(capsys, "--store", store, "import", tmp_path / "other.tar.gz")
    assert_one_line_error(code, err, f"run {rid}", f"item {record['id']}", "field 'raw'", exit_code=2)
    assert snapshot(store) == before
    # the store's copy filed under this id with another identity (an edited manifest)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["identity"]["scoring"] = "edited"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = snapshot(other)
    assert cli(capsys, "--store", store, "export-runs", rid, tmp_path / "good.tar.gz")[0] == 0
    code, _, err = cli(capsys, "--store", other, "import", tmp_path / "good.tar.gz")
    assert_one_line_error(code, err, f"run {rid}", "'identity' differs", exit_code=2)
    assert snapshot(other) == before


def test_a_damaged_run_is_neither_exported_nor_imported_into(human, tmp_path, capsys):
    store, rid = human
    assert cli(capsys, "--store", store, "export-runs", rid, tmp_path / "good.tar.gz")[0] == 0
    damaged = _copy_run(store, tmp_path / "damaged", rid)
    with open(damaged / "predictions.jsonl", "a") as f:
        f.write("garbage\n")
    before = snapshot(tmp_path / "damaged")
    code, _, err = cli(capsys, "--store", tmp_path / "damaged", "export-runs", rid, tmp_path / "x.tar.gz")
    assert_one_line_error(code, err, f"run {rid} cannot be exported", "predictions.jsonl:251", exit_code=2)
    assert not (tmp_path / "x.tar.gz").exists()
    code, _, err = cli(capsys, "--store", tmp_path / "damaged", "import", tmp_path / "good.tar.gz")
    assert_one_line_error(code, err, f"run {rid} is damaged in the store", exit_code=2)
    assert snapshot(tmp_path / "damaged") == before


def test_export_replaces_only_a_bundle_it_wrote(human, tmp_path, capsys):
    store, rid = human
    mine = tmp_path / "mine.tar.gz"
    assert cli(capsys, "--store", store, "export-runs", rid, mine)[0] == 0
    assert cli(capsys, "--store", store, "export-runs", rid, mine)[0] == 0      # its own bundle: replaced
    foreign = tmp_path / "notes.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:                          # someone's tar.gz: never replaced
        tar.add(__file__, arcname="notes.txt")
    link = tmp_path / "link.tar.gz"
    link.symlink_to(mine)
    folder = tmp_path / "folder.tar.gz"
    folder.mkdir()
    text = tmp_path / "text.tar.gz"
    text.write_text("keep me")
    for target in (foreign, link, folder, text):
        before = snapshot(tmp_path)
        code, _, err = cli(capsys, "--store", store, "export-runs", rid, target)
        assert_one_line_error(code, err, str(target), exit_code=2)
        assert snapshot(tmp_path) == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_of_a_leaderboard_and_one_store_per_verb(human, data_dir, tmp_path, capsys):
    store, rid = human
    board = tmp_path / "board.yaml"
    board.write_text("name: b\ntasks: [amazon8]\nreferences:\n  amazon8: [human, gpt-4o-mini, random]\n")
    code, out, err = cli(capsys, "--data-dir", data_dir, "--store", store, "export-runs", board, tmp_path / "b.tgz")
    assert code == 0 and "2 run(s) (2 complete, 0 partial)" in out
    assert "skipped (nothing stored): amazon8 | reference:random: to-run" in err
    code, _, err = cli(capsys, "--store", store, "import", tmp_path / "b.tgz", "--store", tmp_path / "x")
    assert_one_line_error(code, err, "--store given 2 times", exit_code=2)
    assert not (tmp_path / "x").exists()


# --- tampered bundles: each refused with one line naming the archive (and member); nothing written ------
def _tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def _file(name: str, data: bytes, kind=tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def _bundle(path: Path, files: dict[str, bytes], *, index_edit=None, extra=()) -> Path:
    """A bundle as pricebench writes it, from `files` (name -> bytes), its manifest edited by `index_edit`."""
    index = {"format": archive.FORMAT, "format_version": archive.FORMAT_VERSION, "pricebench": "test",
             "members": [{"path": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()]}
    if index_edit:
        index_edit(index)
    members = [_file(archive.INDEX, json.dumps(index).encode())] + [_file(n, d) for n, d in files.items()]
    return _tar_gz(path, members + list(extra))


def _run_files(store: Path, rid: str) -> dict[str, bytes]:
    return {f"runs/{rid}/{n}": (store / rid / n).read_bytes() for n in archive.RUN_FILES}


def _edit_line(data: bytes, number: int, text: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[number] = text
    return b"\n".join(lines)


def _cases(tmp: Path, files: dict[str, bytes], rid: str) -> dict[str, tuple[Path, list[str]]]:
    good = _bundle(tmp / "good.tar.gz", files)
    preds, manifest = f"runs/{rid}/predictions.jsonl", f"runs/{rid}/manifest.json"
    edited_manifest = json.loads(files[manifest])
    edited_manifest["identity"]["scoring"] = "2"
    renamed = {**json.loads(files[manifest]), "task": "../../etc/passwd"}
    text = tmp / "text.tar.gz"
    text.write_text("not an archive")
    cut = tmp / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])
    plain_gzip = tmp / "plain.tar.gz"
    plain_gzip.write_bytes(gzip.compress(b"just text, no tar"))
    big = tarfile.TarInfo(preds)
    big.size = archive.MAX_MEMBER_BYTES + 1                 # declared, not stored: refused before it is read

    def swap(index):
        index["members"][1]["sha256"] = "0" * 64

    return {
        "not an archive": (text, ["not a gzip file"]),
        "truncated": (cut, ["truncated or damaged"]),
        "gzip, not tar": (plain_gzip, ["not a readable tar archive"]),
        "checksum mismatch": (_bundle(tmp / "sum.tar.gz", {**files, preds: files[preds].replace(b"120.00", b"121.00", 1)},
                                      index_edit=lambda i: i["members"][1].update(
                                          sha256=hashlib.sha256(files[preds]).hexdigest())), [preds, "checksum"]),
        "sha256 in the manifest changed": (_bundle(tmp / "swap.tar.gz", files, index_edit=swap), ["checksum"]),
        "dot-dot path": (_bundle(tmp / "dots.tar.gz", files, extra=[_file("runs/../../evil.json", b"{}")]),
                         ["runs/../../evil.json", "escapes"]),
        "absolute path": (_bundle(tmp / "abs.tar.gz", files, extra=[_file("/tmp/evil.json", b"{}")]),
                          ["/tmp/evil.json", "escapes"]),
        "symlink": (_bundle(tmp / "sym.tar.gz", files, extra=[_file(f"runs/{rid}/metrics.json", b"", tarfile.SYMTYPE,
                                                                    "/etc/passwd")]), ["symbolic link"]),
        "hardlink": (_bundle(tmp / "hard.tar.gz", files, extra=[_file("runs/x", b"", tarfile.LNKTYPE, "/etc/passwd")]),
                     ["hard link"]),
        "device": (_bundle(tmp / "dev.tar.gz", files, extra=[_file(f"runs/{rid}/zero", b"", tarfile.CHRTYPE)]),
                   ["not a plain file"]),
        "folder member": (_bundle(tmp / "dir.tar.gz", files, extra=[_file(f"runs/{rid}", b"", tarfile.DIRTYPE)]),
                          ["not a plain file"]),
        "unexpected name": (_bundle(tmp / "name.tar.gz", files, extra=[_file(f"runs/{rid}/notes.txt", b"hi")]),
                            [f"runs/{rid}/notes.txt", "not part of a run bundle"]),
        "bad run id": (_bundle(tmp / "id.tar.gz", files, extra=[_file("runs/ABC/manifest.json", b"{}")]),
                       ["runs/ABC/manifest.json"]),
        "duplicate member": (_bundle(tmp / "dup.tar.gz", files, extra=[_file(preds, files[preds])]),
                             [preds, "appears twice"]),
        "member too big": (_tar_gz(tmp / "big.tar.gz", [(big, None)]), [preds, "over the"]),
        "unknown format version": (_bundle(tmp / "v9.tar.gz", files, index_edit=lambda i: i.update(format_version=9)),
                                   ["format_version 9 is unknown"]),
        "no bundle manifest": (_tar_gz(tmp / "noindex.tar.gz", [_file(n, d) for n, d in files.items()]),
                               ["has no pricebench-bundle.json"]),
        "member not listed": (_bundle(tmp / "unlisted.tar.gz", files, index_edit=lambda i: i["members"].pop()),
                              ["is not listed"]),
        "listed member missing": (_bundle(tmp / "missing.tar.gz", files, index_edit=lambda i: i["members"].append(
            {"path": f"runs/{'0' * 16}/manifest.json", "sha256": "0", "size": 1})), ["listed", "but missing"]),
        "identity not of this id": (_bundle(tmp / "ident.tar.gz", {**files, manifest: json.dumps(edited_manifest)
                                                                   .encode()}), [manifest, "does not hash"]),
        "task not the identity's": (_bundle(tmp / "task.tar.gz", {**files, manifest: json.dumps(renamed).encode()}),
                                    [manifest, "field 'task'", "identity says 'amazon8'"]),
        "garbage line": (_bundle(tmp / "garbage.tar.gz", {**files, preds: _edit_line(files[preds], 3, b"{oops")}),
                         [f"{preds}:4", "not a valid JSON line"]),
        "metrics count": (_bundle(tmp / "count.tar.gz", {**files, preds: _edit_line(files[preds], 3, b"")}),
                          ["metrics.json", "249"]),
        "data after the end": (tmp / "tail.tar.gz", ["not a member"]),
    }


def test_tampered_bundles_are_refused_and_the_store_is_untouched(human, tmp_path, capsys):
    store, rid = human
    files = _run_files(store, rid)
    cases = _cases(tmp_path, files, rid)
    raw = gzip.decompress((tmp_path / "good.tar.gz").read_bytes())
    (tmp_path / "tail.tar.gz").write_bytes(gzip.compress(raw + b"\x01" * 512))
    target = tmp_path / "target"
    _copy_run(store, target, rid, slice(0, 10), metrics=False)       # a partial run the bundle would complete
    shutil.copytree(target, tmp_path / "probe")
    assert cli(capsys, "--store", tmp_path / "probe", "import", tmp_path / "good.tar.gz")[0] == 0   # untampered: imports
    before = snapshot(target)
    for name, (bundle, needles) in cases.items():
        code, out, err = cli(capsys, "--store", target, "import", bundle)
        assert_one_line_error(code, err, str(bundle), *needles, exit_code=2)
        assert snapshot(target) == before, name
    code, _, err = cli(capsys, "--store", tmp_path / "new", "import", cases["symlink"][0])
    assert code == 2 and not (tmp_path / "new").exists()


def test_a_decompression_bomb_stops_at_the_cap(human, tmp_path, capsys, monkeypatch):
    store, rid = human
    files = _run_files(store, rid)
    files[f"runs/{rid}/predictions.jsonl"] += b"\n" * (4 * 2**20)         # 4 MiB of blank lines: ~4 KB gzipped
    bomb = _bundle(tmp_path / "bomb.tar.gz", files)
    assert bomb.stat().st_size < 64 * 1024
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 2**20)
    code, _, err = cli(capsys, "--store", tmp_path / "s", "import", bomb)
    assert_one_line_error(code, err, str(bomb), "decompresses to more than 1,048,576 bytes", exit_code=2)
    assert not (tmp_path / "s").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")
def test_an_import_cut_short_by_a_full_disk_is_finished_by_the_same_command(human, small_disk, capsys):
    store, _ = human
    disk, resize = small_disk
    bundle = disk.parent / "both.tar.gz"
    rids = sorted(p.name for p in store.iterdir())
    assert cli(capsys, "--store", store, "export-runs", *rids, bundle)[0] == 0
    code, _, err = cli(capsys, "--store", disk / "runs", "import", bundle)
    assert_one_line_error(code, err, "disk is full", exit_code=1)
    assert not list(disk.rglob(".*.tmp"))
    resize("8m")
    code, out, _ = cli(capsys, "--store", disk / "runs", "import", bundle)
    assert code == 0 and "Traceback" not in out
    for rid in rids:
        for name in archive.RUN_FILES:
            assert (disk / "runs" / rid / name).read_bytes() == (store / rid / name).read_bytes()
