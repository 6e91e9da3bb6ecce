"""`pricebench curate`: a task folder built from raw Amazon Reviews 2023 metadata with the course's rules.

raw.py reads and validates the raw JSONL (clean.py: the course's item rules), sample.py
de-duplicates, balances by price and splits with a seed, card.py writes the data card. The
folder OUT/NAME follows the owned-folder rule (harness.owned): built in a temporary
sibling, then its files replace an earlier curation's (its marker lists them); a file the user
put there stays, one pricebench did not write is never overwritten, and a failure leaves
nothing half-written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

import numpy as np
import yaml

from harness.curate.card import build_card, render_markdown
from harness.curate.clean import Rules
from harness.curate.raw import hub_raw_file, json_line, read_raw
from harness.curate.sample import BUCKET_CAP, KEEP_FROM, balanced, deduplicate, split
from harness.errors import InputError
from harness import owned
from harness.jsonio import atomic_write
from harness.yamlspec import SAFE_NAME

MARKER = ".pricebench-curate"
COURSE_TOKENIZER = "meta-llama/Meta-Llama-3.1-8B"
EVAL_ITEMS = 250          # the course evaluates the first 250 test items
# amazon8's prompts (the course's); tests/test_curate.py checks they still match tasks/amazon8.yaml
PROMPTS = {"base": "How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is $",
           "chat": {"system": "You estimate prices of items. Reply only with the price, no explanation",
                    "user": "How much does this cost?\n\n{text}", "assistant_prefix": "Price is $"}}


def load_tokenizer(name: str):
    """AutoTokenizer from a local folder or a hub name; any failure is one line naming --tokenizer."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except Exception as e:  # noqa: BLE001 - missing files, offline hub, gated model: one line
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(f"cannot load tokenizer {name!r} ({reason})", field="--tokenizer") from None


def tokenizer_info(name: str, tokenizer) -> dict:
    import transformers

    return {"name": name, "class": type(tokenizer).__name__, "vocab_size": len(tokenizer),
            "transformers": transformers.__version__}


def _legacy_files(folder: Path, marker: dict | None) -> set[str] | None:
    """A curation from before the marker listed its files: its marker, and the files curate writes."""
    if marker is None or not isinstance(marker.get("name"), str):
        return None
    name = marker["name"]
    return {n for n in ("test.jsonl", "train.jsonl", f"{name}.yaml", "data_card.json", "DATA_CARD.md")
            if (folder / n).is_file()}


CURATE = owned.Owner(MARKER, "pricebench curate", "--name", legacy=_legacy_files)


def _check_target(out: Path, name: str) -> Path:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"{name!r} is not a safe name: use 1-64 letters, digits, '_', '.' or '-', starting with a "
                         f"letter or digit (it becomes a folder and file name)", field="--name")
    if os.path.lexists(out) and (os.path.islink(out) or not os.path.isdir(out)):
        raise InputError("is not a folder (a file or a symbolic link): choose a folder for the curated task",
                         path=out, field="OUT")
    owned.folder_state(out / name, CURATE)
    return out / name


def _task_yaml(name: str, n_test: int, command: str) -> str:
    spec = {"name": name,
            "description": f"Curated from raw Amazon Reviews 2023 metadata by pricebench curate ({name}/DATA_CARD.md)",
            "eval_slice": f"0:{EVAL_ITEMS}" if n_test > EVAL_ITEMS else "all",
            "source": {"local": {"test": f"{name}/test.jsonl", "train": [{"file": f"{name}/train.jsonl"}]}},
            "prompts": PROMPTS}
    head = (f"# Written by `pricebench curate`; paths relative to the folder that holds {name}/ "
            f"(use it as --data-dir).\n# {command}\n")
    return head + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000)


def _items(candidates, prefix: str, width: int) -> str:
    return "".join(json_line({"id": f"{prefix}-{i:0{width}d}", "title": c.title, "text": c.text,
                              "details": c.details, "category": c.category, "price": c.price})
                   for i, c in enumerate(candidates))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def curate(out, *, name: str, raw=(), hub_category: str | None = None, categories=(), seed: int = 42,
           test_size: int = 2000, tokenizer: str = COURSE_TOKENIZER, rules: Rules = Rules(),
           bucket_cap: int = BUCKET_CAP, keep_from: int = KEEP_FROM, skip_bad_lines: bool = False,
           command: str | None = None) -> Path:
    """Build OUT/NAME/ (test.jsonl, train.jsonl, NAME.yaml, DATA_CARD.md, data_card.json); return the folder."""
    out = Path(os.path.abspath(out))
    target = _check_target(out, name)
    if not raw and not hub_category:
        raise InputError("give raw files with --raw FILE.jsonl, or --hub-category CATEGORY", field="--raw")
    if not rules.min_tokens < rules.max_tokens:
        raise InputError(f"--min-tokens ({rules.min_tokens}) must be below --max-tokens ({rules.max_tokens})",
                         field="--min-tokens")
    if hub_category and (not SAFE_NAME.fullmatch(hub_category) or ".." in hub_category):
        raise InputError(f"{hub_category!r} is not a category name (e.g. Appliances)", field="--hub-category")
    paths = [Path(p) for p in raw]
    missing = next((p for p in paths if not p.exists()), None)
    if missing is not None:                   # before loading (or downloading) a tokenizer, not after
        raise InputError("raw file not found", path=missing, field="--raw")
    tok = load_tokenizer(tokenizer)           # before a download of gigabytes, not after
    if hub_category:
        paths.append(hub_raw_file(hub_category))
    candidates, tally = read_raw(paths, tok, rules, categories=set(categories), skip_bad_lines=skip_bad_lines)
    unique, dropped = deduplicate(candidates)
    rng = np.random.default_rng(seed)
    sample = balanced(unique, rng, bucket_cap=bucket_cap, keep_from=keep_from)
    if len(sample) <= test_size:
        raise InputError(f"only {len(sample):,} items survive curation ({sum(tally.kept_by_category.values()):,} "
                         f"kept of {tally.records:,} records, {dict(tally.skipped)} skipped): need more than "
                         f"--test-size {test_size:,} (the rest is the train split)", field="--test-size")
    test, train = split(sample, rng, test_size)
    command = command or f"pricebench curate {shlex.quote(str(out))} --name {name}"
    files = {"test.jsonl": _items(test, name, 4), "train.jsonl": _items(train, f"{name}-train", 6),
             f"{name}.yaml": _task_yaml(name, len(test), command)}
    options = {"seed": seed, "test_size": test_size, "categories": sorted(set(categories)),
               "min_tokens": rules.min_tokens, "max_tokens": rules.max_tokens, "min_chars": rules.min_chars,
               "bucket_cap": bucket_cap, "keep_from": keep_from, "skip_bad_lines": skip_bad_lines,
               "hub_category": hub_category}
    card = build_card(name=name, command=command, options=options, tokenizer=tokenizer_info(tokenizer, tok),
                      tally=tally, deduplicated=dropped, after_dedup=len(unique), sampled=len(sample), test=test,
                      train=train, hashes={k: _sha(v) for k, v in files.items()})
    files["data_card.json"] = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    files["DATA_CARD.md"] = render_markdown(card)
    with owned.writing(target, CURATE, {"name": name}) as staging:
        for filename, text in files.items():
            atomic_write(staging / filename, text)
    return target
