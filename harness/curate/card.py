"""The data card of a curated task: data_card.json (for tools and the report) and DATA_CARD.md.

It says what was read and why each left-out record was left out, the price histogram, the
exact command, seed and tokenizer, and the sha256 of every raw input and every output file:
two curations of the same inputs with the same options can be compared by their hashes. No
timestamps, so the same inputs and options give byte-identical cards too.
"""
from __future__ import annotations

from collections import Counter

CARD_VERSION = 1
HISTOGRAM_EDGES = (0.5, 10, 25, 50, 100, 200, 300, 500, 1000)   # dollars; the last bucket is [500, 1000)
BAR_WIDTH = 40


def histogram(prices) -> list[dict]:
    """Counts per price bucket [low, high)."""
    counts = Counter()
    for p in prices:
        for low, high in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:]):
            if low <= p < high:
                counts[low] += 1
                break
    return [{"low": low, "high": high, "count": counts[low]} for low, high in zip(HISTOGRAM_EDGES,
                                                                                HISTOGRAM_EDGES[1:])]


def build_card(*, name: str, command: str, options: dict, tokenizer: dict, tally, deduplicated: int,
               after_dedup: int, sampled: int, test: list, train: list, hashes: dict) -> dict:
    """The data card as one JSON-able dict (data_card.json; DATA_CARD.md renders the same)."""
    per_category = {}
    for split_name, items in (("test", test), ("train", train)):
        for c in items:
            row = per_category.setdefault(c.category, {"kept": tally.kept_by_category.get(c.category, 0),
                                                       "test": 0, "train": 0})
            row[split_name] += 1
    for category, kept in tally.kept_by_category.items():
        per_category.setdefault(category, {"kept": kept, "test": 0, "train": 0})
    return {
        "written_by": "pricebench curate", "card_version": CARD_VERSION, "name": name,
        "command": command, "options": options, "tokenizer": tokenizer,
        "raw_files": tally.files,
        "counts": {"lines": tally.lines, "records": tally.records, "kept": sum(tally.kept_by_category.values()),
                   "skipped": dict(sorted(tally.skipped.items())), "deduplicated": deduplicated,
                   "after_dedup": after_dedup, "sampled": sampled, "test": len(test), "train": len(train)},
        "bad_lines": tally.bad_lines[:20],
        "per_category": dict(sorted(per_category.items())),
        "price_histogram": {"test": histogram(c.price for c in test), "train": histogram(c.price for c in train)},
        "sha256": hashes,
    }


def _bar(count: int, top: int) -> str:
    return "#" * (round(BAR_WIDTH * count / top) if top else 0)


def render_markdown(card: dict) -> str:
    """DATA_CARD.md: the same facts as data_card.json, for people."""
    c = card["counts"]
    lines = [f"# Data card: {card['name']}", "",
             "Curated by `pricebench curate` from raw Amazon Reviews 2023 product metadata "
             "(McAuley Lab), with the LLM Engineering course's rules (docs/curation.md).", "",
             "## Command", "", "```", card["command"], "```", "",
             f"Seed {card['options']['seed']} (numpy.random.default_rng); tokenizer `{card['tokenizer']['name']}` "
             f"({card['tokenizer']['class']}, vocabulary {card['tokenizer']['vocab_size']:,}, "
             f"transformers {card['tokenizer']['transformers']}).", "",
             "## Counts", "", "| step | items |", "| --- | ---: |",
             f"| lines read | {c['lines']:,} |", f"| records | {c['records']:,} |",
             f"| kept by the course's rules | {c['kept']:,} |",
             f"| dropped as duplicate titles | {c['deduplicated']:,} |",
             f"| in the price-balanced sample | {c['sampled']:,} |",
             f"| test | {c['test']:,} |", f"| train | {c['train']:,} |", "",
             "Skipped records by reason:", ""]
    lines += [f"- {reason}: {n:,}" for reason, n in c["skipped"].items()] or ["- none"]
    if card["bad_lines"]:
        lines += ["", "Bad lines (first 20):", ""] + [f"- {b}" for b in card["bad_lines"]]
    lines += ["", "## Categories", "", "| category | kept | test | train |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {r['kept']:,} | {r['test']:,} | {r['train']:,} |"
              for name, r in card["per_category"].items()]
    for split_name in ("test", "train"):
        rows = card["price_histogram"][split_name]
        top = max((r["count"] for r in rows), default=0)
        lines += ["", f"## Price histogram ({split_name})", "", "```"]
        lines += [f"${r['low']:>6,.2f} - ${r['high']:>8,.2f} {r['count']:>7,} {_bar(r['count'], top)}" for r in rows]
        lines += ["```"]
    lines += ["", "## Files (sha256)", ""]
    lines += [f"- `{name}`: `{digest}`" for name, digest in card["sha256"].items()]
    lines += ["", "Raw inputs:", ""]
    lines += [f"- `{f['path']}` (category {f['category'] or 'from main_category'}): `{f['sha256']}`"
              for f in card["raw_files"]]
    return "\n".join(lines) + "\n"
