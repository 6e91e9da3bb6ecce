"""Adapters as bytes: how a Ray worker gets an adapter and gives one back, with no shared disk.

`pack` makes an uncompressed tar of an adapter folder's parts (safetensors do not compress),
leaving out what only a resume needs (optimizer, scheduler, RNG state); `unpack` extracts one,
refusing anything but plain files and folders inside the target (Python's tar `data` filter on
top); `install` puts a finished adapter that a worker trained into the local adapter cache so that
a reader never sees it half-written: checkpoints and final/ are moved in by renames and the
manifest, which says `complete`, is written last (as `adapters.finetune` does).
"""
from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

from harness.finetune.layout import CHECKPOINTS, FINAL, MANIFEST
from harness.jsonio import read_json

RESUME_ONLY = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt")   # and rng_state_N.pth
MAX_BYTES = 64 * 2**30          # a tar larger than this is refused (a full fine-tune of a big model fits)


def _resume_only(name: str) -> bool:
    return name in RESUME_ONLY or (name.startswith("rng_state_") and name.endswith(".pth"))


def pack(root: Path, parts=None, *, resume_state: bool = False) -> bytes:
    """`root`'s `parts` (relative paths; default: all of it) as tar bytes; symbolic links are left out."""
    root = Path(root)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for part in parts or sorted(p.name for p in root.iterdir()):
            top = root / part
            paths = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
            for path in paths:
                if path.is_symlink() or not path.is_file() or (not resume_state and _resume_only(path.name)):
                    continue
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, into: Path) -> Path:
    """Extract `data` (from `pack`) into the new folder `into`; a link, a device or a name escaping it is refused."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"adapter archive of {len(data):,} bytes is over the {MAX_BYTES:,}-byte limit")
    into = Path(into)
    into.mkdir(parents=True, exist_ok=False)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = tar.getmembers()
        for member in members:
            name = Path(member.name)
            if not (member.isfile() or member.isdir()) or name.is_absolute() or ".." in name.parts:
                raise ValueError(f"adapter archive member {member.name!r} is not a plain file inside the adapter")
        tar.extractall(into, members=members, filter="data")
    return into


def install(folder, data: bytes, session: dict | None = None) -> None:
    """Put a finished adapter (tar bytes of its folder, from a worker) into `folder` (an AdapterFolder,
    whose lock the caller holds): checkpoints, then final/ by renames, then the manifest (its last
    session noting `session`, e.g. which Ray worker trained it)."""
    staging = folder.path.parent / f".{folder.adapter_id}.incoming-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        unpack(data, staging)
        manifest = read_json(staging / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("status") != "complete" \
                or manifest.get("adapter_id") != folder.adapter_id or not (staging / FINAL).is_dir():
            raise ValueError(f"the adapter sent back is not the finished adapter {folder.adapter_id}")
        folder.path.mkdir(parents=True, exist_ok=True)
        if (staging / CHECKPOINTS).is_dir():
            old = folder.path / f".{CHECKPOINTS}.old-{os.getpid()}"
            if (folder.path / CHECKPOINTS).exists():
                os.replace(folder.path / CHECKPOINTS, old)
            os.replace(staging / CHECKPOINTS, folder.path / CHECKPOINTS)
            shutil.rmtree(old, ignore_errors=True)
        folder.publish_final(staging / FINAL)
        if session and manifest.get("sessions"):
            manifest["sessions"][-1].update(session)
        folder.write_manifest(manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
