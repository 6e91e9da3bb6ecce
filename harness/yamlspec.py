"""Load a YAML spec strictly and remember the line of every key, so spec errors can name the line.

Strict because a spec is user input that decides what is run and where files go:
- aliases (`*name`) are refused while composing, before anything is built: a "billion
  laughs" bomb would otherwise expand until MemoryError, a recursive alias recurse forever;
- a key given twice is an error (YAML would silently keep the last one);
- keys must be plain scalars; unknown keys get a "did you mean" (`check_keys`);
- names that become file or folder names must be safe identifiers (`check_name`).
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from harness.errors import InputError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Spec(dict):
    """A mapping from a YAML file that knows where each of its keys was written."""

    path: Path
    lines: dict

    def line_of(self, *keys) -> int | None:
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.lines:
                return self.lines[keys[:n]]
        return self.lines.get(())

    def error(self, message: str, *keys) -> InputError:
        return InputError(message, path=self.path, line=self.line_of(*keys), field=".".join(map(str, keys)) or None)

    def require(self, *keys, kind=None):
        node = self
        for i, key in enumerate(keys):
            if not isinstance(node, (dict, list)) or (isinstance(node, dict) and key not in node) \
                    or (isinstance(node, list) and not (isinstance(key, int) and 0 <= key < len(node))):
                raise self.error("is required", *keys[: i + 1])
            node = node[key]
        if kind is not None and not isinstance(node, kind):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(f"must be a {name}, got {type(node).__name__}", *keys)
        return node


def did_you_mean(word, choices) -> str:
    """' (did you mean 'eval_slice'?)' for a likely typo, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(spec: Spec, node: dict, allowed, *keys) -> None:
    """Refuse keys the schema does not define: a typo must not silently fall back to a default."""
    extra = [k for k in node if k not in allowed]
    if extra:
        raise spec.error(f"unknown key{did_you_mean(extra[0], allowed)} (allowed: {', '.join(sorted(allowed))})",
                         *keys, extra[0])


def check_name(spec: Spec, *keys) -> str:
    """A name that becomes a file or folder name: letters, digits, '_', '.', '-'; no '..'."""
    name = spec.require(*keys, kind=str)
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise spec.error(f"{name!r} is not a safe name: use 1-64 letters, digits, '_', '.' or '-', starting with a "
                         f"letter or digit (it becomes a file or folder name)", *keys)
    return name


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases while composing, so nothing is ever expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasFound(event.anchor, event.start_mark.line + 1)
        return super().compose_node(parent, index)


class _AliasFound(Exception):
    def __init__(self, anchor, line):
        super().__init__(anchor)
        self.anchor, self.line = anchor, line


def _walk(path: Path, node, keys, lines):
    """Record the line of every key and refuse duplicate or non-scalar keys."""
    if isinstance(node, yaml.MappingNode):
        lines.setdefault(keys, node.start_mark.line + 1)
        seen = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError("keys must be plain words or numbers", path=path, line=line,
                                 field=".".join(map(str, keys)) or None)
            ident = (key_node.tag, key_node.value)
            key = (*keys, key_node.value)
            if ident in seen:
                raise InputError(f"key given twice (first on line {seen[ident]}; YAML would keep only the last)",
                                 path=path, line=line, field=".".join(map(str, key)))
            seen[ident] = line
            lines[key] = line
            _walk(path, value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        lines.setdefault(keys, node.start_mark.line + 1)
        for i, child in enumerate(node.value):
            lines[(*keys, i)] = child.start_mark.line + 1
            _walk(path, child, (*keys, i), lines)


def load_spec(path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a YAML file", path=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path) from None
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        lines: dict = {}
        _walk(path, root, (), lines)
        data = loader.construct_document(root) if root is not None else None
    except _AliasFound as e:
        raise InputError(f"YAML aliases (*{e.anchor}) are not allowed in pricebench specs: write the value out",
                         path=path, line=e.line) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(e, 'problem', None) or e}", path=path,
                         line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise InputError("nested too deeply", path=path) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError("must be a YAML mapping", path=path, line=1)
    spec = Spec(data)
    spec.path, spec.lines = path, lines
    return spec
