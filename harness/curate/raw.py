"""Raw Amazon Reviews 2023 metadata (`meta_<Category>.jsonl`, one product per line) -> candidate items.

A line that is not JSON, not UTF-8 or not an object is a broken file: by default it stops
everything with one error naming file:line (nothing is written); with `skip_bad_lines` it is
counted in the data card instead. A well-formed record the course's rules leave out (no price,
a range, a wrong field shape, too short) is never an error: it is skipped and counted by reason.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness.curate.clean import Rules, Skip, contents, details_json, parse_price, prompt_text, string_list
from harness.data import BadNumber, strict_json
from harness.errors import InputError
from harness.jsonio import MAX_LINE_BYTES, capped_lines, too_long

HUB_DATASET = "McAuley-Lab/Amazon-Reviews-2023"
_FILE_CATEGORY = re.compile(r"meta_(.+)\.jsonl")
WHAT = "a product record"


@dataclass
class Candidate:
    """A record that passed the course's rules: what becomes an Item once sampled and given an id."""

    title: str
    text: str
    details: str | None
    category: str
    price: float


@dataclass
class Tally:
    """What reading saw: the data card's counts."""

    lines: int = 0
    records: int = 0
    bad_lines: list = field(default_factory=list)       # "file:line: why" (with skip_bad_lines)
    skipped: Counter = field(default_factory=Counter)
    kept_by_category: Counter = field(default_factory=Counter)
    files: list = field(default_factory=list)           # {"path", "sha256", "category"}


def file_category(path: Path) -> str | None:
    """`meta_Appliances.jsonl` (the hub's raw file name) -> 'Appliances'; other names: None."""
    m = _FILE_CATEGORY.fullmatch(path.name)
    return m.group(1) if m else None


def _lines(path: Path, digest, skip_long: bool):
    """(line number, bytes) of a file, hashing it on the way; whole file never held in memory, nor
    a line past the cap (refused, or yielded as None when bad lines are skipped)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError("raw file not found", path=path, field="--raw") from None
    except IsADirectoryError:
        raise InputError("is a folder, not a JSONL file", path=path, field="--raw") from None
    with f:
        yield from capped_lines(f, path, what=WHAT, seen=digest.update, skip_long=skip_long)


def _record(line: bytes | None, path: Path, number: int):
    if line is None:                          # a line past the cap, read past (--skip-bad-lines)
        raise InputError(too_long(MAX_LINE_BYTES, WHAT), path=path, line=number)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"invalid UTF-8 at byte {e.start}", path=path, line=number) from None
    obj = strict_json(text, path=path, line=number)
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object (one product), got {type(obj).__name__}", path=path, line=number)
    return obj


def _encodable(*texts) -> bool:
    """False for a lone surrogate (valid JSON '\\ud800', not writable as UTF-8)."""
    try:
        for t in texts:
            if t is not None:
                t.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def candidate(obj: dict, category: str | None, tokenizer, rules: Rules, categories) -> Candidate:
    """One raw record through the course's rules; Skip(reason) when it is left out."""
    if category is None:
        main = obj.get("main_category")
        if not isinstance(main, str) or not main.strip():
            raise Skip("no category")
        category = main.strip()
    if categories and category not in categories:
        raise Skip("category not selected")
    title = obj.get("title")
    if isinstance(title, BadNumber) or not isinstance(title, str) or not title.strip():
        raise Skip("no title")
    price = obj.get("price")
    if isinstance(price, BadNumber):
        raise Skip("price not a number")
    price = parse_price(price)
    details = details_json(obj)
    body = contents(string_list(obj, "description"), string_list(obj, "features"), details)
    if not _encodable(title, body, details):
        raise Skip("text not encodable (lone surrogate)")
    text = prompt_text(title, body, tokenizer, rules)
    return Candidate(title=title, text=text, details=details, category=category, price=price)


def read_raw(paths, tokenizer, rules: Rules, *, categories=(), skip_bad_lines=False,
             tally: Tally | None = None) -> tuple[list[Candidate], Tally]:
    """Every raw file in order, every line in order: the candidates and what was counted."""
    tally = tally or Tally()
    kept = []
    for path in map(Path, paths):
        category, digest = file_category(path), hashlib.sha256()
        for number, line in _lines(path, digest, skip_bad_lines):
            tally.lines += 1
            if line is not None and not line.strip():
                continue
            try:
                obj = _record(line, path, number)
            except InputError as e:
                if not skip_bad_lines:
                    raise
                tally.bad_lines.append(f"{path.name}:{number}: {e.reason}")
                tally.skipped["bad line"] += 1
                continue
            tally.records += 1
            try:
                item = candidate(obj, category, tokenizer, rules, categories)
            except Skip as s:
                tally.skipped[s.reason] += 1
                continue
            tally.kept_by_category[item.category] += 1
            kept.append(item)
        tally.files.append({"path": str(path), "sha256": digest.hexdigest(), "category": category})
    return kept, tally


def hub_raw_file(category: str) -> Path:
    """Download `raw/meta_categories/meta_<Category>.jsonl` of McAuley-Lab/Amazon-Reviews-2023 (cached).

    The dataset's loading script no longer runs under `datasets` 4+, so the JSONL file itself is
    fetched (huggingface_hub, resumable, cached) and read like a local --raw file: same rules,
    same line numbers, same sha256 in the data card.
    """
    import logging

    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)        # its retry warnings would break the one-line error
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(HUB_DATASET, f"raw/meta_categories/meta_{category}.jsonl", repo_type="dataset"))
    except Exception as e:  # noqa: BLE001 - offline, unknown category, no access: one line
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(f"cannot download {HUB_DATASET} raw/meta_categories/meta_{category}.jsonl ({reason}); "
                         f"download it elsewhere and pass it with --raw", field="--hub-category") from None
    finally:
        hub_logger.setLevel(level)


def json_line(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"
