"""The run bundle file: a gzip-compressed tar archive with one fixed layout, written and read safely.

    pricebench-bundle.json          format, format_version, pricebench version, and every member
                                    below with its sha256 and size
    runs/<run id>/manifest.json     the three files of a run folder, as the store holds them
    runs/<run id>/predictions.jsonl (metrics.json only for a finished run)
    runs/<run id>/metrics.json

Why tar.gz: the Python standard library writes and reads it, `tar tzf` lists it anywhere, it is
one stream (no seeking: it can be piped), and JSON lines compress about 5x. Writing is
deterministic (sorted members, zero times and owners, no gzip name or time), so the same runs
give byte-identical bundles.

Reading trusts nothing: a member must be a plain file named exactly as above (no links, devices,
`..` or absolute paths, no duplicates), no member may exceed its size cap and the whole archive
may not decompress past MAX_TOTAL_BYTES (a decompression bomb stops there), every member must be
listed in the bundle manifest with a matching sha256 and size, a JSONL line may not pass the line
cap of every file from elsewhere (harness.jsonio), and an unknown format version is refused.
Every error names the archive and the member.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from harness.errors import InputError
from harness.jsonio import MAX_LINE_BYTES, atomic_file, loads, too_long
from harness.versions import pricebench_version
from harness.runs.store import METRICS, MANIFEST, PREDICTIONS

FORMAT, FORMAT_VERSION = "pricebench-runs", 1
INDEX = "pricebench-bundle.json"
RUN_MEMBER = re.compile(r"runs/([0-9a-f]{16})/(manifest\.json|predictions\.jsonl|metrics\.json)")
RUN_FILES = (MANIFEST, PREDICTIONS, METRICS)     # the order of a run's members in a bundle
MAX_INDEX_BYTES = 64 * 2**20          # the bundle manifest (about 200 bytes per member)
MAX_MEMBER_BYTES = 256 * 2**20        # one run file (2,000 items of predictions take about 1 MB)
MAX_TOTAL_BYTES = 512 * 2**20         # everything, decompressed (and held in memory while checked):
                                      # more runs than that travel in several bundles
MAX_MEMBERS = 30_001                  # 10,000 runs
CHUNK, BLOCK = 2**20, 512
INDEX_START = b'{\n "format": "' + FORMAT.encode() + b'",'     # how write_bundle's manifest begins


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    return info


def _tar_size(sizes) -> int:
    """The bytes a tar of members of these sizes takes (headers, padding, end blocks, record padding)."""
    size = sum(BLOCK + n + (-n) % BLOCK for n in sizes) + 2 * BLOCK
    return size + (-size) % tarfile.RECORDSIZE


def write_bundle(path, members: list[tuple[str, bytes]]) -> dict:
    """Write `members` ((name, bytes), run files) and the bundle manifest to `path` atomically;
    a bundle that the reader's limits would refuse is not written."""
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, "pricebench": pricebench_version(),
             "members": [{"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                         for name, data in members]}
    text = json.dumps(index, indent=1).encode() + b"\n"
    members = [(INDEX, text), *members]
    big = next(((name, len(data)) for name, data in members
                if len(data) > (MAX_INDEX_BYTES if name == INDEX else MAX_MEMBER_BYTES)), None)
    total = _tar_size(len(data) for _, data in members)
    if big or total > MAX_TOTAL_BYTES or len(members) > MAX_MEMBERS:
        why = f"{big[0]} takes {big[1]:,} bytes" if big else f"{len(members):,} files take {total:,} bytes"
        raise InputError(f"{why}, over a bundle's limits ({MAX_MEMBER_BYTES:,} bytes a file, {MAX_MEMBERS:,} files, "
                         f"{MAX_TOTAL_BYTES:,} bytes in all): export fewer runs per bundle", path=path, field="FILE")
    with atomic_file(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:   # gzip's own default
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                for name, data in members:
                    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
    return index


def _member_problem(member: tarfile.TarInfo, seen) -> str | None:
    name = member.name
    parts = PurePosixPath(name).parts
    if member.issym() or member.islnk():
        return f"is a {'symbolic' if member.issym() else 'hard'} link (to {member.linkname!r}), not a file"
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return "is not a plain file (a folder, device, fifo or sparse file)"
    if name.startswith("/") or ".." in parts or "\\" in name:
        return "escapes the bundle (an absolute path or '..')"
    if name != INDEX and not RUN_MEMBER.fullmatch(name):
        return f"is not part of a run bundle (expected {INDEX} or runs/<16 hex digits>/{'|'.join(RUN_FILES)})"
    if name in seen:
        return "appears twice"
    cap = MAX_INDEX_BYTES if name == INDEX else MAX_MEMBER_BYTES
    if member.size > cap:
        return f"is {member.size:,} bytes, over the {cap:,}-byte limit"
    return None


def _decompress(path: Path) -> bytes:
    """The whole tar stream, read in chunks: a truncated or corrupt gzip stream fails its checks
    here, and reading stops at MAX_TOTAL_BYTES (a decompression bomb never fills memory or disk)."""
    chunks, total = [], 0
    with open(path, "rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise InputError("is not a pricebench run bundle (not a gzip file)", path=path, field="archive")
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            while chunk := gz.read(CHUNK):
                total += len(chunk)
                if total > MAX_TOTAL_BYTES:
                    raise InputError(f"decompresses to more than {MAX_TOTAL_BYTES:,} bytes (a decompression bomb?)",
                                     path=path, field="archive")
                chunks.append(chunk)
    return b"".join(chunks)


def _read_members(path: Path) -> dict[str, memoryview]:
    try:
        blob = _decompress(path)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"is not a readable tar.gz archive ({_why(e)}): truncated or damaged?", path=path,
                         field="archive") from None
    view, members = memoryview(blob), {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            while (member := tar.next()) is not None:
                name = member.name
                if len(members) >= MAX_MEMBERS:
                    raise InputError(f"holds more than {MAX_MEMBERS:,} members", path=path, field="archive")
                problem = _member_problem(member, members)
                if problem:
                    raise InputError(f"member {name!r} {problem}", path=path, field="archive")
                data = view[member.offset_data:member.offset_data + member.size]
                if len(data) != member.size:
                    raise InputError(f"member {name!r} is cut short: the archive is truncated", path=path,
                                     field="archive")
                members[name] = data
            end = tar.offset
    except tarfile.TarError as e:
        raise InputError(f"is not a readable tar archive inside the gzip stream ({_why(e)})", path=path,
                         field="archive") from None
    if blob.count(0, end) != len(blob) - end:     # tarfile stops quietly at a bad header: the rest would be lost
        raise InputError(f"holds data after byte {end:,} that is not a member (a damaged member header?)",
                         path=path, field="archive")
    return members


def _why(error: Exception) -> str:
    return " ".join(str(error).split())[:160] or type(error).__name__


def _check_index(path: Path, members: dict[str, bytes]) -> dict:
    """The bundle manifest, checked: format and version, and a listed, matching entry for every member."""
    if INDEX not in members:
        raise InputError(f"has no {INDEX}: not a pricebench run bundle", path=path, field="archive")
    try:
        index = loads(bytes(members.pop(INDEX)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError(f"member {INDEX!r} is not valid JSON", path=path, field="archive") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise InputError(f"member {INDEX!r} does not say format {FORMAT!r}: not a pricebench run bundle", path=path,
                         field="archive")
    version = index.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(f"member {INDEX!r}: format_version {version!r} is unknown (this pricebench reads "
                         f"{FORMAT_VERSION}; the bundle may come from a newer pricebench)", path=path, field="archive")
    listed = index.get("members")
    if not isinstance(listed, list) or not all(isinstance(m, dict) and isinstance(m.get("path"), str)
                                               for m in listed):
        raise InputError(f"member {INDEX!r}: field 'members' is not a list of entries with a path", path=path,
                         field="archive")
    by_name = {m.get("path"): m for m in listed}
    if len(by_name) != len(listed):
        raise InputError(f"member {INDEX!r} lists a member twice", path=path, field="archive")
    for name in sorted(set(by_name) | set(members)):
        entry, data = by_name.get(name), members.get(name)
        if data is None:
            raise InputError(f"member {name!r} is listed in {INDEX} but missing", path=path, field="archive")
        if entry is None:
            raise InputError(f"member {name!r} is not listed in {INDEX}", path=path, field="archive")
        if entry.get("size") != len(data) or entry.get("sha256") != hashlib.sha256(data).hexdigest():
            raise InputError(f"member {name!r}: checksum mismatch (sha256 or size differs from {INDEX}): the "
                             f"bundle was changed or damaged after it was written", path=path, field="archive")
    return index


def _check_lines(path: Path, members: dict) -> None:
    """A JSONL member's lines are held to the line cap of every file from elsewhere (jsonio)."""
    for name, data in members.items():
        if not name.endswith(".jsonl"):
            continue
        data, start, number = bytes(data), 0, 1
        while start < len(data):
            end = data.find(b"\n", start, start + MAX_LINE_BYTES + 1)
            if end < 0 and len(data) - start > MAX_LINE_BYTES:
                raise InputError(f"member {name!r} line {number}: {too_long(MAX_LINE_BYTES, 'a prediction')}",
                                 path=path, field="archive")
            start, number = (len(data) if end < 0 else end + 1), number + 1


def read_bundle(path) -> tuple[dict, dict[str, bytes]]:
    """(bundle manifest, {member name: bytes} of the run files), every check above passed."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a run bundle", path=path, field="archive")
    members = _read_members(path)
    index = _check_index(path, members)
    _check_lines(path, members)
    return index, members


def is_bundle(path: Path) -> bool:
    """Is `path` a bundle pricebench wrote (an existing export may be replaced; nothing else is)?
    Its first member is our manifest, which starts with our format: this reads 1 KB."""
    try:
        with gzip.open(path, "rb") as gz:
            head = gz.read(BLOCK + len(INDEX_START))
        first = tarfile.TarInfo.frombuf(head[:BLOCK], "utf-8", "surrogateescape")
    except (OSError, EOFError, zlib.error, tarfile.TarError):
        return False
    return first.name == INDEX and first.isreg() and head[BLOCK:] == INDEX_START
