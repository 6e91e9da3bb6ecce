"""Load a YAML spec and remember the line of every key, so spec errors can name the line."""
from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import InputError


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
            if not isinstance(node, (dict, list)) or (isinstance(node, dict) and key not in node):
                raise self.error("is required", *keys[: i + 1])
            node = node[key]
        if kind is not None and not isinstance(node, kind):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(f"must be a {name}, got {type(node).__name__}", *keys)
        return node


def _walk(node, path, lines):
    if isinstance(node, yaml.MappingNode):
        lines.setdefault(path, node.start_mark.line + 1)
        for key_node, value_node in node.value:
            key = (*path, key_node.value)
            lines[key] = key_node.start_mark.line + 1
            _walk(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        lines.setdefault(path, node.start_mark.line + 1)
        for i, child in enumerate(node.value):
            lines[(*path, i)] = child.start_mark.line + 1
            _walk(child, (*path, i), lines)


def load_spec(path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 ({e.reason} at byte {e.start})", path=path) from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"invalid YAML: {getattr(e, 'problem', e)}", path=path,
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("must be a YAML mapping", path=path, line=1)
    spec = Spec(data)
    spec.path, spec.lines = path, {}
    _walk(root, (), spec.lines)
    return spec
