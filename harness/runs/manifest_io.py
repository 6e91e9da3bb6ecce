"""The one reader of a run manifest (manifest.json), and its one serialisation.

`read_manifest` never raises on damage: bytes that are not JSON, or JSON that is not an object,
give no record and a problem; a field of the wrong type (or a non-finite number, or a list
element that is not an object) is left out of the record and named in a problem, so a
hand-edited manifest still reads with everything else it holds; a field every run has that is
missing is named too. Each problem names the file and the field
(`runs/ab12.../manifest.json: field 'sessions': not a list`). The run store, bundles, merges and
reports all read manifests here; `RunFolder.write_manifest` writes them (`manifest_json`).
"""
from __future__ import annotations

import copy
from pathlib import Path

from pydantic import ValidationError

from harness.jsonio import loads
from harness.runs.record import FORMAT_VERSION, Record, RunManifest

REQUIRED = ("run_id", "task", "model", "identity", "item_ids")     # what every run folder's manifest holds
MAX_REPAIRS = 64
SAYS = {"dict_type": "not an object", "list_type": "not a list", "model_type": "not an object",
        "string_type": "not a text", "int_type": "not an integer", "float_type": "not a number",
        "finite_number": "not a finite number", "bool_type": "not true or false"}


class Problem(str):
    """A problem's text, and the field it concerns (`field`: top-level name; `loc`: the full path)."""

    field: str | None
    loc: tuple

    def __new__(cls, text: str, loc: tuple = ()):
        self = super().__new__(cls, text)
        self.loc, self.field = tuple(loc), (str(loc[0]) if loc else None)
        return self


def _field_name(loc) -> str:
    return ".".join(str(part) for part in loc)


def _drop(data: dict, loc: tuple) -> tuple:
    """Remove the value at `loc` (or the deepest part of it that exists) from `data`; the path removed."""
    node, path = data, []
    for part in loc:
        child_ok = (isinstance(node, dict) and part in node) or \
                   (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not child_ok:
            break
        if path and not isinstance(node[part], (dict, list)):
            path.append(part)
            break
        path.append(part)
        node = node[part]
    path = path or [loc[0]]
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
        del parent[path[-1]]
    return tuple(path)


def _what(error: dict) -> str:
    return SAYS.get(error["type"], " ".join(error["msg"].split())[:100].lower())


def validated(cls: type[Record], data: dict, where) -> tuple[Record, list[Problem]]:
    """The record (of class `cls`) of `data`, every field that does not fit left out and named."""
    problems = []
    for _ in range(MAX_REPAIRS):
        try:
            return cls.model_validate(data), problems
        except ValidationError as e:
            errors = e.errors(include_url=False)
        if not problems:
            data = copy.deepcopy(data)      # repaired on a copy: the caller's object stays as it was
        first = errors[0]     # one at a time: dropping a list element shifts the ones after it
        loc = _drop(data, tuple(first["loc"]))
        problems.append(Problem(f"{where}: field '{_field_name(loc)}': {_what(first)}", loc))
    raise AssertionError(f"{where}: a record that cannot be repaired")    # pragma: no cover


def read_manifest(source, where=None) -> tuple[RunManifest | None, list[Problem]]:
    """(the record, its problems) of a manifest given as a path, bytes or parsed JSON; `where`
    names it in problems (default: the path). Never raises on damage; a missing file is (None, [])."""
    where = where if where is not None else source
    if isinstance(source, (str, Path)):
        try:
            source = Path(source).read_bytes()
        except FileNotFoundError:
            return None, []
    if isinstance(source, (bytes, bytearray, memoryview)):
        try:
            source = loads(bytes(source).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            return None, [Problem(f"{where}: unreadable ({' '.join(str(e).split())[:120]})")]
        except RecursionError:
            return None, [Problem(f"{where}: unreadable (nested too deeply)")]
    if not isinstance(source, dict):
        return None, [Problem(f"{where}: not a JSON object")]
    version = source.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        return None, [Problem(f"{where}: field 'format_version': {version!r} is not one this pricebench reads "
                              f"(1 to {FORMAT_VERSION}; written by a newer pricebench?)", ("format_version",))]
    try:
        record, problems = validated(RunManifest, source, where)
    except RecursionError:
        return None, [Problem(f"{where}: unreadable (nested too deeply)")]
    problems += [Problem(f"{where}: field '{name}': missing", (name,)) for name in REQUIRED if name not in source]
    return record, problems


def manifest_json(record: RunManifest) -> dict:
    """The JSON object a manifest file holds: the record, stamped with the format it is written in."""
    return {"format_version": FORMAT_VERSION, **record.as_json()}
