"""How fast, and in how much memory, is a YAML alias bomb refused? (target: well under 1 s, a few MB)

A "billion laughs" spec (9 levels x 9 aliases: 9^9 = 387 million leaves once expanded) and a
recursive alias, loaded through harness.yamlspec.load_spec, load_task and load_leaderboard:
each is refused at its first alias, before anything is built. For comparison, what plain
yaml.safe_load does on the recursive alias and on SMALLER bombs (5 and 6 levels), and what
the old load_spec (compose + safe_load + walk every node to record its line) did on them:
9x the time and memory per level, so 9 levels would need ~1,000x the 6-level figure. No
full-size bomb is ever given to anything but the strict loader.

Each case runs in its own subprocess (memory capped at 4 GiB, 120 s), which prints its wall
time, its peak RSS above the peak after imports (0.0: no growth past it), and, from a second
traced attempt, the peak of Python allocations (tracemalloc).

    python benchmarks/yaml_alias_bomb.py
Wrap timed runs in `flock /tmp/pricebench-bench.lock ...` on a shared machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time, tracemalloc
from pathlib import Path
import yaml
from harness.yamlspec import load_spec
from harness.tasks import load_task
from harness.suite import load_leaderboard

resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
case, path = sys.argv[1], Path(sys.argv[2])
text = path.read_text()


def old_walk(node, keys, lines):  # the walk of the old load_spec: every node of the expanded tree
    if isinstance(node, yaml.MappingNode):
        lines.setdefault(keys, node.start_mark.line + 1)
        for k, v in node.value:
            lines[(*keys, k.value)] = k.start_mark.line + 1
            old_walk(v, (*keys, k.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        lines.setdefault(keys, node.start_mark.line + 1)
        for i, child in enumerate(node.value):
            lines[(*keys, i)] = child.start_mark.line + 1
            old_walk(child, (*keys, i), lines)


def load():
    if case == "load_spec":
        load_spec(path)
    elif case == "load_task":
        load_task(path)
    elif case == "load_leaderboard":
        load_leaderboard(path)
    elif case == "yaml.safe_load":
        yaml.safe_load(text)
    elif case == "old load_spec":
        old_walk(yaml.compose(text), (), {})
        yaml.safe_load(text)


def attempt():
    try:
        load()
        return "loaded (no error)"
    except BaseException as e:
        return f"{type(e).__name__}: {' '.join(str(e).split())}".replace(str(path.parent) + "/", "")[:100]


base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
outcome = attempt()
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()                       # a second, traced attempt: Python's allocation peak
attempt()
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"seconds": elapsed, "rss_mib": (peak - base) / 1024, "alloc_mib": traced / 2**20,
                  "outcome": outcome}))
"""


def bomb(levels: int, width: int = 9, prefix: str = "") -> str:
    rows = [f'l0: &l0 [{", ".join(["lol"] * width)}]']
    rows += [f'l{i}: &l{i} [{", ".join([f"*l{i - 1}"] * width)}]' for i in range(1, levels)]
    return prefix + "\n".join(rows) + "\n"


def measure(case: str, path: Path) -> dict:
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, case, str(path)], capture_output=True, text=True,
                              timeout=120, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        return {"seconds": 120.0, "rss_mib": float("nan"), "alloc_mib": float("nan"), "outcome": "killed after 120 s"}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"seconds": float("nan"), "rss_mib": float("nan"), "alloc_mib": float("nan"),
                "outcome": f"child died (exit {proc.returncode}): {proc.stderr.strip()[-80:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="yaml-bomb-"))
    files = {
        "task, 9x9 bomb": (work / "task_bomb.yaml", bomb(9, prefix="name: bomb\n")),
        "leaderboard, 9x9 bomb": (work / "board_bomb.yaml", bomb(9, prefix="name: bomb\ntasks: [amazon8]\n")),
        "recursive alias": (work / "recursive.yaml", "name: loop\nloop: &loop [1, *loop]\n"),
        "5-level bomb": (work / "bomb5.yaml", bomb(5, prefix="name: bomb\n")),
        "6-level bomb": (work / "bomb6.yaml", bomb(6, prefix="name: bomb\n")),
    }
    for path, text in files.values():
        path.write_text(text)
    plan = [
        ("task, 9x9 bomb", "load_spec"), ("task, 9x9 bomb", "load_task"),
        ("leaderboard, 9x9 bomb", "load_spec"), ("leaderboard, 9x9 bomb", "load_leaderboard"),
        ("recursive alias", "load_spec"), ("recursive alias", "yaml.safe_load"), ("recursive alias", "old load_spec"),
        ("5-level bomb", "load_spec"), ("5-level bomb", "yaml.safe_load"), ("5-level bomb", "old load_spec"),
        ("6-level bomb", "load_spec"), ("6-level bomb", "yaml.safe_load"), ("6-level bomb", "old load_spec"),
    ]
    print(f"python {sys.version.split()[0]}; each case in a fresh subprocess\n")
    print(f"{'input':<23}{'loader':<18}{'seconds':>9}{'RSS MiB':>9}{'alloc MiB':>11}  outcome")
    for name, loader in plan:
        r = measure(loader, files[name][0])
        print(f"{name:<23}{loader:<18}{r['seconds']:>9.4f}{r['rss_mib']:>9.1f}{r['alloc_mib']:>11.3f}  {r['outcome']}")
    for path, _ in files.values():
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
