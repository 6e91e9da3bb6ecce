"""An adapter folder's layout, in one place: its manifest, its final adapter and its checkpoints.

    <id>/manifest.json     what adapters.py records (status `complete` last)
    <id>/checkpoints/      checkpoint-N, written by a causal-LM training (train.py)
    <id>/final/            the trained adapter; a regression training (regression.py) keeps its
                           own checkpoints in final/checkpoints/
"""
from __future__ import annotations

from pathlib import Path

from harness.jsonio import read_json

MANIFEST, FINAL, CHECKPOINTS = "manifest.json", "final", "checkpoints"


def complete_checkpoints(out_dir: Path, at_most: int | None = None) -> list[tuple[int, Path]]:
    """The complete checkpoints (up to step `at_most`), in step order: transformers writes
    `trainer_state.json` last, so a folder whose state file is missing or unreadable was cut by a
    kill and is skipped."""
    folder = Path(out_dir) / CHECKPOINTS
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and path.is_dir() and not path.is_symlink() and (at_most is None or int(step) <= at_most):
            try:
                read_json(path / "trainer_state.json")
            except (OSError, ValueError, RecursionError):
                continue
            found.append((int(step), path))
    return sorted(found)


def last_checkpoint(out_dir: Path, at_most: int | None = None) -> Path | None:
    """The newest complete checkpoint (up to step `at_most`); see complete_checkpoints."""
    found = complete_checkpoints(out_dir, at_most)
    return found[-1][1] if found else None
