"""A cheap, stable identity for model weights, so a run's id changes when its weights change
(hf:, vllm:, a regression adapter's base, the retrieval embedding model).

Hashing gigabytes on every run would cost more than many runs; the size plus the first and
last MiB of each weight file, and the full text of its config files, catch any real change.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
_SAMPLE_BYTES = 1 << 20


def _file_fingerprint(path: Path, digest) -> None:
    """Size + first and last MiB: cheap, stable across machines, differs when weights differ."""
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}:".encode())
    with open(path, "rb") as f:
        digest.update(f.read(_SAMPLE_BYTES))
        if size > 2 * _SAMPLE_BYTES:
            f.seek(size - _SAMPLE_BYTES)
            digest.update(f.read(_SAMPLE_BYTES))


def weights_fingerprint(path) -> str:
    """A short hash of a weights file or folder (config + every weight file's fingerprint)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name.endswith("config.json")))
    for file in files:
        if file.suffix in WEIGHT_SUFFIXES:
            _file_fingerprint(file, digest)
        else:
            digest.update(file.name.encode() + b":" + file.read_bytes())
    return digest.hexdigest()[:16]
