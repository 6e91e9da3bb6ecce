"""Items: the schema, validated loading from local JSONL, and loading from the Hugging Face hub.

Validation is strict because one bad price silently shifts every metric: the first problem
raises an InputError naming the file, line and field, before anything is run or written.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import InputError
from harness.jsonio import capped_lines

REQUIRED_FIELDS = ("id", "title", "text", "details", "category", "price")
OPTIONAL_FIELDS = ("price_exact", "source")
MAX_PRICE = 100_000.0  # the course keeps [0.50, 999.49]; anything past this is a data bug
MAX_NUMBER_CHARS = 100  # longer JSON numbers are refused (Python's int() raises past 4,300 digits)

BASE_QUESTION = "How much does this cost to the nearest dollar?\n\n"
PRICE_SUFFIX = re.compile(r"\n\nPrice is \$[\d.,]*\s*$")


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    text: str
    details: str | None
    category: str | None
    price: float
    price_exact: bool = True
    source: str | None = None

    def details_dict(self) -> dict:
        """Amazon's `details` JSON as a dict ({} when absent or unreadable)."""
        if not self.details:
            return {}
        try:
            value = json.loads(self.details)
        except (TypeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict:
        return asdict(self)


class BadNumber:
    """A JSON number pricebench refuses (NaN, Infinity, hundreds of digits), kept as a marker so the
    field's own type check rejects it and the error names the field. Never a number."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _DuplicateKey(Exception):
    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _number(convert):
    def parse(text: str):
        return BadNumber(f"a {len(text):,}-character number") if len(text) > MAX_NUMBER_CHARS else convert(text)
    return parse


def strict_json(text: str, *, path=None, line=None):
    """json.loads for data files: no duplicate keys (JSON keeps the last one silently), no
    NaN/Infinity (not JSON), no absurdly long numbers (BadNumber markers); errors name file:line."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_int=_number(int),
                          parse_float=_number(float), parse_constant=lambda name: BadNumber(f"{name} (not JSON)"))
    except _DuplicateKey as e:
        raise InputError("key given twice (JSON would keep only the last)", path=path, line=line,
                         field=str(e.key)) from None
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=line) from None
    except RecursionError:
        raise InputError("invalid JSON: nested too deeply", path=path, line=line) from None
    except ValueError as e:
        raise InputError(f"invalid JSON: {e}", path=path, line=line) from None


def parse_slice(spec, *, path=None, field="slice") -> slice:
    """'0:250', '250:', 'all' or None -> a Python slice."""
    if spec is None or spec == "all":
        return slice(None)
    if isinstance(spec, int):
        return slice(0, spec)
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(spec))
    if not m:
        raise InputError(f"bad slice {spec!r}: use 'START:END', 'START:', or 'all'", path=path, field=field)
    start, stop = (int(x) if x else None for x in m.groups())
    return slice(start, stop)


def _check_item(obj, path, line, seen) -> Item:
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=line)
    for name in REQUIRED_FIELDS:
        if name not in obj:
            raise InputError("missing field", path=path, line=line, field=name)
    extra = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if extra:
        raise InputError(f"unknown field (allowed: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)})",
                         path=path, line=line, field=extra[0])
    item_id = obj["id"]
    if not isinstance(item_id, str) or not item_id.strip():
        raise InputError("must be a non-empty string", path=path, line=line, field="id")
    if item_id in seen:
        raise InputError(f"duplicate id {item_id!r} (first on line {seen[item_id]})", path=path, line=line, field="id")
    seen[item_id] = line
    price = obj["price"]
    if isinstance(price, BadNumber):
        raise InputError(f"must be a finite number of sensible length, got {price!r}", path=path, line=line,
                         field="price")
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        raise InputError(f"must be a number, got {price!r}", path=path, line=line, field="price")
    if not math.isfinite(price) or price <= 0:
        raise InputError(f"must be a positive finite number, got {price!r}", path=path, line=line, field="price")
    if price > MAX_PRICE:
        raise InputError(f"absurd price {price!r} (over {MAX_PRICE:,.0f})", path=path, line=line, field="price")
    for name in ("title", "text"):
        if not isinstance(obj[name], str):
            raise InputError("must be a string", path=path, line=line, field=name)
    if not obj["text"].strip():
        raise InputError("is empty", path=path, line=line, field="text")
    for name in ("details", "category", "source"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            raise InputError("must be a string or null", path=path, line=line, field=name)
    if not isinstance(obj.get("price_exact", True), bool):
        raise InputError("must be true or false", path=path, line=line, field="price_exact")
    _check_encodable(obj, path, line)
    return Item(id=item_id, title=obj["title"], text=obj["text"], details=obj["details"],
                category=obj["category"], price=float(price), price_exact=obj.get("price_exact", True),
                source=obj.get("source"))


def _check_encodable(obj: dict, path, line) -> None:
    """Every text field writable as UTF-8: JSON's "\\ud800" (a lone surrogate) is refused here, not
    when a prediction or a report is written later."""
    for name in ("id", "title", "text", "details", "category", "source"):
        value = obj.get(name)
        if not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"holds a character UTF-8 cannot write ({ascii(value[e.start])} at character "
                             f"{e.start}, a lone surrogate?)", path=path, line=line, field=name) from None


def read_items(path, item_slice=None) -> list[Item]:
    """Read and validate a whole JSONL file, then cut the slice (ids are checked file-wide)."""
    items, _ = read_items_with_lines(path, item_slice)
    return items


def read_items_with_lines(path, item_slice=None) -> tuple[list[Item], list[int]]:
    """read_items, plus each item's line number in the file (for errors that point at a line)."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError("data file not found (set --data-dir or PRICEBENCH_DATA)", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a JSONL data file", path=path) from None
    items, lines, seen = [], [], {}
    with f:
        for number, line_bytes in capped_lines(f, path, what="an item"):
            if not line_bytes.strip():
                continue
            try:
                line = line_bytes.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"invalid UTF-8 at byte {e.start}", path=path, line=number) from None
            obj = strict_json(line, path=path, line=number)
            items.append(_check_item(obj, path, number, seen))
            lines.append(number)
    if not items:
        raise InputError("holds no items", path=path)
    if item_slice is None:
        return items, lines
    return items[item_slice], lines[item_slice]


def items_from_hub_rows(rows, id_prefix: str, source: str, indices=None, text_field: str = "text") -> list[Item]:
    """Rows of `ed-donner/pricer-data` style datasets (columns text, price) -> Items.

    The hub's `text` is the whole training prompt (question, body, 'Price is $NN.00');
    we keep the body only, so our own prompt templates apply as for local data. Another
    `text_field` (the 2025 edition's `summary`) is the body as it is, with the row's `title`.
    """
    items = []
    for i, row in zip(indices if indices is not None else range(len(rows)), rows):
        text = row[text_field]
        if text_field == "text":
            body = text[len(BASE_QUESTION):] if text.startswith(BASE_QUESTION) else text
            body = PRICE_SUFFIX.sub("", body).strip()
            title = body.split("\n", 1)[0]
        else:
            body, title = text, row.get("title") or text.split("\n", 1)[0]
        obj = {"id": f"{id_prefix}-{i:04d}", "title": title, "text": body,
               "details": None, "category": row.get("category"), "price": row["price"]}
        items.append(_check_item(obj, source, i + 1, {}))
    return items


def load_hub_items(dataset: str, split: str, id_prefix: str, item_slice=None, cache_dir=None,
                   text_field: str = "text") -> list[Item]:
    """Load a split from the hub (or a local folder laid out like a hub dataset repo)."""
    import datasets

    ds = datasets.load_dataset(dataset, split=split, cache_dir=cache_dir)
    indices = range(len(ds))[item_slice] if item_slice is not None else range(len(ds))
    rows = ds.select(indices)
    return items_from_hub_rows(rows, id_prefix, f"{dataset}[{split}]", indices, text_field)


def data_hash(items) -> str:
    """Content hash of items in order: what a run's identity and a fitted model's cache key use."""
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps([item.id, item.text, item.details, item.price], ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


# --- leakage by content: the same product under another id -----------------------------------
TITLE_CHARS = 40   # the course's evaluator (and the data README's "Overlap") compares 40 characters
_PUNCT = re.compile(r"[^\w\s]")


def normalize(text: str | None) -> str:
    """Lowercase, punctuation stripped, whitespace collapsed: what two copies of an item share."""
    return " ".join(_PUNCT.sub("", (text or "").lower()).split())


def content_keys(item: Item) -> list[tuple[str, str]]:
    """(field, key) pairs that identify an item's content: its title's first 40 normalized
    characters and its whole normalized text (empty keys never match)."""
    keys = [("title", normalize(item.title)[:TITLE_CHARS]), ("text", normalize(item.text))]
    return [(name, key) for name, key in keys if key]


def content_duplicates(train, evaluation) -> list[tuple[int, Item, str]]:
    """For each train item whose normalized title or text equals an evaluation item's:
    (its index in `train`, the evaluation item, the field that matched)."""
    index = {}
    for item in evaluation:
        for key in content_keys(item):
            index.setdefault(key, item)
    found = []
    for n, item in enumerate(train):
        for key in content_keys(item):
            if key in index:
                found.append((n, index[key], key[0]))
                break
    return found
