"""`pricebench curate`: a task folder built from raw Amazon Reviews 2023 metadata with the course's rules.

raw.py reads and validates the raw JSONL (clean.py: the course's item rules), sample.py
de-duplicates, balances by price and splits with a seed, card.py writes the data card. The
folder OUT/NAME is written whole into a temporary sibling inside OUT and renamed into place;
an existing OUT/NAME is replaced only if an earlier curate wrote it (its marker file), so
nothing pricebench did not create is ever overwritten, and a failure leaves nothing half-written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import yaml

from harness.curate.card import build_card, render_markdown
from harness.curate.clean import Rules
from harness.curate.raw import hub_raw_file, json_line, read_raw
from harness.curate.sample import BUCKET_CAP, KEEP_FROM, balanced, deduplicate, split
from harness.errors import InputError
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


def _check_target(out: Path, name: str) -> Path:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"{name!r} is not a safe name: use 1-64 letters, digits, '_', '.' or '-', starting with a "
                         f"letter or digit (it becomes a folder and file name)", field="--name")
    if os.path.lexists(out) and (os.path.islink(out) or not os.path.isdir(out)):
        raise InputError("is not a folder (a file or a symbolic link): choose a folder for the curated task",
                         path=out, field="OUT")
    target = out / name
    if _state(target) == "foreign":
        raise InputError(f"exists and was not written by pricebench curate (no {MARKER} file): not touching it; "
                         f"choose another --name or OUT", path=target, field="--name")
    return target


def _state(target: Path) -> str:
    """'absent' | 'ours' | 'foreign' (a link, a file, or a folder without our marker)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return "absent"
    if not stat.S_ISDIR(mode):
        return "foreign"
    marker = target / MARKER
    try:
        ok = stat.S_ISREG(os.lstat(marker).st_mode) and json.loads(marker.read_text(encoding="utf-8")) \
            .get("written_by") == "pricebench curate"
    except (OSError, ValueError, AttributeError):
        return "foreign"
    return "ours" if ok else "foreign"


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
    files[MARKER] = json.dumps({"written_by": "pricebench curate", "name": name}) + "\n"
    _write_folder(out, target, files)
    return target


def _write_folder(out: Path, target: Path, files: dict[str, str]) -> None:
    """All files into a temporary sibling inside OUT, then renamed into place (an old curate folder swapped out)."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.curate-", suffix=".tmp", dir=out))
    try:
        for filename, text in files.items():
            try:
                atomic_write(staging / filename, text)
            except OSError as e:                   # name the file the user asked for, not the temporary one
                raise OSError(e.errno, e.strerror, str(target / filename)) from e
        os.chmod(staging, 0o755)
        state = _state(target)                     # again: something may have appeared meanwhile
        if state == "foreign":
            raise InputError(f"exists and was not written by pricebench curate (no {MARKER} file): not touching it",
                             path=target, field="--name")
        if state == "absent":
            os.rename(staging, target)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.curate-old-", suffix=".tmp", dir=out))
        os.rename(target, old / "old")
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old / "old", target)         # put the previous curation back
            raise
        finally:
            if not os.path.lexists(old / "old"):
                shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
