"""The shape rules of the brief, checked on the source: no import cycle (between modules or
between packages), no module over 400 lines, no function over 80 lines.

The import graph is read with `ast`, so it sees imports inside functions (lazy imports) as
well as those at module level; only `if TYPE_CHECKING:` blocks are skipped, since they never
run. A backend named by a dotted string in a registry is not an import and is not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent / "harness"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module and package under harness/."""
    found = {}
    for path in sorted(HARNESS.rglob("*.py")):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom in the tree, at any depth, outside `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _nearest(name: str, modules: dict[str, Path]) -> str | None:
    """The module itself, or the closest enclosing package that exists (harness.x.Name -> harness.x)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]):
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield _nearest(alias.name, modules)
        return
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    for alias in node.names:
        full = f"{base}.{alias.name}"
        yield full if full in modules else _nearest(base, modules)


def import_graph() -> dict[str, set[str]]:
    """Module -> the harness modules it imports (anywhere in it but TYPE_CHECKING blocks)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _import_nodes(tree):
            for target in _targets(name, path, node, modules):
                if target and target != name and target.startswith("harness"):
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each as a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_one_cycle(sorted(component), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _one_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A concrete cycle through the component's first node (breadth-first, so a shortest one)."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    return component


def _package_graphs(graph: dict[str, set[str]], packages=None):
    """For each package, the graph between its direct children (a subpackage stands for all of
    its modules). The package's own __init__ importing a child is a parent->child edge and left out."""
    if packages is None:
        packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    for package in sorted(packages):
        prefix = package + "."

        def child(name: str) -> str | None:
            if not name.startswith(prefix):
                return None
            return prefix + name[len(prefix):].split(".")[0]

        children: dict[str, set[str]] = {}
        for source, targets in graph.items():
            a = child(source)
            if a is None:
                continue
            children.setdefault(a, set())
            for target in targets:
                b = child(target)
                if b is not None and b != a:
                    children[a].add(b)
        yield package, children


def _show(cycle: list[str]) -> str:
    return " -> ".join(cycle)


def test_no_module_level_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles between modules:\n" + "\n".join(map(_show, cycles))


def test_no_package_level_import_cycle():
    graph = import_graph()
    problems = [f"in {package}: {_show(cycle)}"
                for package, children in _package_graphs(graph) for cycle in _cycles(children)]
    assert not problems, "import cycles between packages (or a package and a module):\n" + "\n".join(problems)


def test_graph_sees_lazy_and_relative_imports():
    """The checks above are only as good as the graph: it must see what it claims to."""
    graph = import_graph()
    assert "harness.errors" in graph["harness.predictors"]          # module-level, absolute
    assert all(targets <= set(graph) for targets in graph.values())
    lazy = [(name, node) for name, path in _modules().items()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef)
            and any(isinstance(n, ast.ImportFrom) and (n.module or "").startswith("harness") for n in node.body)]
    assert lazy, "expected at least one function-level import in harness/"
    name, function = lazy[0]
    imported = next(n.module for n in function.body if isinstance(n, ast.ImportFrom)
                    and (n.module or "").startswith("harness"))
    assert _nearest(imported, _modules()) in graph[name]


def test_imports_resolve_to_modules():
    """Relative imports, a module named as a name of its package, a name of a package (its
    __init__), and a TYPE_CHECKING block (skipped)."""
    modules = _modules()
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import base\n"                       # harness.predictors.base (a module)
        "from .. import errors\n"                    # harness.errors
        "from ..suite.jobs import execute_job\n"     # harness.suite.jobs (a name in a module)
        "from harness.predictors import hf, make_predictor\n"   # a subpackage; the package itself
        "import harness.runs.store as store\n"
        "if TYPE_CHECKING:\n"
        "    from harness.report import build\n"
        "def later():\n"
        "    from harness.tasks import load_task\n")
    path = HARNESS / "predictors" / "reference.py"
    found = {target for node in _import_nodes(ast.parse(source))
             for target in _targets("harness.predictors.reference", path, node, modules)}
    assert found == {"harness.predictors.base", "harness.errors", "harness.suite.jobs", "harness.predictors.hf",
                     "harness.predictors", "harness.runs.store", "harness.tasks", None}    # None: typing


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_package_level_cycles_count_modules_as_their_package():
    graph = {"h": set(), "h.p": {"h.p.x"}, "h.p.x": {"h.q.y"}, "h.p.z": set(),    # h.p -> h.p.x: parent -> child
             "h.q": set(), "h.q.y": set(), "h.q.w": {"h.p.z"}}                    # h.q.w -> h.p: closes a cycle
    found = {package: _cycles(children) for package, children in _package_graphs(graph, {"h", "h.p", "h.q"})}
    assert found == {"h": [["h.p", "h.q", "h.p"]], "h.p": [], "h.q": []}
    del graph["h.q.w"]
    assert all(not _cycles(children) for _, children in _package_graphs(graph, {"h", "h.p", "h.q"}))


def test_no_module_over_400_lines():
    long = [f"{path.relative_to(HARNESS.parent)}: {n} lines" for path in _modules().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, "modules over 400 lines:\n" + "\n".join(long)


def test_no_function_over_80_lines():
    long = []
    for path in _modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if (n := node.end_lineno - first + 1) > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(HARNESS.parent)}:{node.lineno} {node.name}: {n} lines")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)
