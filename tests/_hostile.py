"""Shared checks for the hostile-input matrix (tests/test_hostile_*.py).

Every case runs the real CLI entry point (`harness.cli.main`) in-process and asserts the
contract: a non-zero exit, exactly one line on stderr that names the path or field, and no
traceback. `snapshot` records a folder's files (bytes) so a case can assert it is unchanged.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness.cli import main


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `pricebench ARGV` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str, exit_code: int | None = None) -> str:
    """Non-zero exit (or `exit_code`), one `pricebench: ...` line naming every needle, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0, f"exit code 0 for a case that must fail; stderr: {err!r}"
    if exit_code is not None:
        assert code == exit_code, (code, err)
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("pricebench: ")]
    assert len(errors) == 1, f"expected one 'pricebench: ' line, got: {err!r}"
    for needle in needles:
        assert str(needle) in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha256 of its bytes (or 'dir')} for everything under `folder`."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = "dir" if path.is_dir() and not path.is_symlink() else (
            "link:" + str(path.readlink()) if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest())
    return out
