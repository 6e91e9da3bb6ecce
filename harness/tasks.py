"""Price tasks: a declarative YAML spec per task (tasks/*.yaml) and the registry over them.

A task says where its items come from (offline files under a data directory, else the
Hugging Face hub), which slice is evaluated, what the model trains on, and how items
become prompts. A new task is a YAML file, no code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from harness.data import Item, data_hash, load_hub_items, parse_slice, read_items
from harness.errors import InputError
from harness.yamlspec import Spec, load_spec

TASKS_DIR = Path(os.environ.get("PRICEBENCH_TASKS", Path(__file__).resolve().parent.parent / "tasks"))


def default_data_dir() -> Path | None:
    value = os.environ.get("PRICEBENCH_DATA")
    return Path(value) if value else None


@dataclass
class Task:
    """A loaded task spec bound to a data location (a local folder, or None for the hub)."""

    spec: Spec
    data_dir: Path | None = None
    eval_slice_override: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    # --- the spec --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def description(self) -> str:
        return self.spec.get("description", "")

    @property
    def eval_slice(self) -> str:
        return str(self.eval_slice_override or self.spec.get("eval_slice", "all"))

    @property
    def base_template(self) -> str:
        return self.spec["prompts"]["base"]

    @property
    def chat_template(self) -> dict:
        return self.spec["prompts"]["chat"]

    @property
    def published(self) -> list[dict]:
        return list(self.spec.get("published") or [])

    @property
    def is_local(self) -> bool:
        return self.data_dir is not None

    # --- the data --------------------------------------------------------------------
    def _local(self, key: str) -> Path:
        return self.data_dir / self.spec["source"]["local"][key]

    def _test_items(self) -> list[Item]:
        if "test" not in self._cache:
            if self.is_local:
                self._cache["test"] = read_items(self._local("test"))
            else:
                hub = self.spec["source"]["hub"]
                self._cache["test"] = load_hub_items(hub["dataset"], hub.get("test_split", "test"), hub["id_prefix"])
        return self._cache["test"]

    def eval_items(self) -> list[Item]:
        """The evaluation slice (default: the course's first 250 test items)."""
        items = self._test_items()[parse_slice(self.eval_slice, path=self.spec.path, field="eval_slice")]
        if not items:
            raise InputError(f"slice {self.eval_slice!r} selects no items", path=self.spec.path, field="eval_slice")
        return items

    def train_items(self) -> list[Item]:
        """The train split: the course's pool plus this task's unused test items (250-1999)."""
        if "train" in self._cache:
            return self._cache["train"]
        items: list[Item] = []
        if self.is_local:
            for n, part in enumerate(self.spec["source"]["local"]["train"]):
                s = parse_slice(part.get("slice"), path=self.spec.path, field=f"source.local.train.{n}.slice")
                items += read_items(self.data_dir / part["file"], s)
        else:
            hub = self.spec["source"]["hub"]
            for n, part in enumerate(hub["train"]):
                s = parse_slice(part.get("slice"), path=self.spec.path, field=f"source.hub.train.{n}.slice")
                # test-split items keep the eval ids (amazon8-0250...); other splits get their own
                prefix = hub["id_prefix"] if part["split"] == hub.get("test_split", "test") \
                    else f"{hub['id_prefix']}-{part['split']}"
                items += load_hub_items(hub["dataset"], part["split"], prefix, s)
        eval_ids = {item.id for item in self.eval_items()}
        leaked = [item.id for item in items if item.id in eval_ids]
        if leaked:
            raise InputError(f"train split contains evaluation items ({leaked[0]}, ...)", path=self.spec.path,
                             line=self.spec.line_of("source"), field="source.train")
        self._cache["train"] = items
        return items

    @property
    def references_path(self) -> Path | None:
        """Per-item recorded runs: only in the offline data directory."""
        if not self.is_local or "references" not in self.spec["source"]["local"]:
            return None
        path = self._local("references")
        return path if path.exists() else None

    @cached_property
    def eval_hash(self) -> str:
        return data_hash(self.eval_items())

    @cached_property
    def train_hash(self) -> str:
        return data_hash(self.train_items())

    def identity(self) -> dict:
        """What a run's identity takes from the task: the evaluated data and the prompts."""
        return {"name": self.name, "eval_slice": self.eval_slice, "eval_hash": self.eval_hash,
                "prompts": self.spec["prompts"]}


def _validate(spec: Spec) -> Spec:
    spec.require("name", kind=str)
    spec.require("source", kind=dict)
    if "local" not in spec["source"] and "hub" not in spec["source"]:
        raise spec.error("needs 'local' and/or 'hub'", "source")
    if "local" in spec["source"]:
        spec.require("source", "local", "test", kind=str)
        for n, part in enumerate(spec.require("source", "local", "train", kind=list)):
            spec.require("source", "local", "train", n, "file", kind=str)
    if "hub" in spec["source"]:
        for key in ("dataset", "id_prefix"):
            spec.require("source", "hub", key, kind=str)
        for n, part in enumerate(spec.require("source", "hub", "train", kind=list)):
            spec.require("source", "hub", "train", n, "split", kind=str)
    base = spec.require("prompts", "base", kind=str)
    if "{text}" not in base:
        raise spec.error("must contain {text}", "prompts", "base")
    for key in ("system", "user"):
        spec.require("prompts", "chat", key, kind=str)
    if "{text}" not in spec["prompts"]["chat"]["user"]:
        raise spec.error("must contain {text}", "prompts", "chat", "user")
    parse_slice(spec.get("eval_slice"), path=spec.path, field="eval_slice")
    for n, row in enumerate(spec.get("published") or []):
        for key in ("run", "mae", "rmsle", "hit_rate"):
            spec.require("published", n, key)
    return spec


def task_files(tasks_dir: Path | None = None) -> dict[str, Path]:
    folder = Path(tasks_dir or TASKS_DIR)
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_task(name_or_path, data_dir=None, eval_slice: str | None = None, tasks_dir=None) -> Task:
    """A task by registry name or by path to a YAML file.

    data_dir: offline data folder; defaults to $PRICEBENCH_DATA; None means the hub.
    """
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        files = task_files(tasks_dir)
        if str(name_or_path) not in files:
            raise InputError(f"unknown task {name_or_path!r} (known: {', '.join(files) or 'none'})", field="task")
        path = files[str(name_or_path)]
    spec = _validate(load_spec(path))
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if data_dir is not None and "local" not in spec["source"]:
        data_dir = None
    if data_dir is None and "hub" not in spec["source"]:
        raise InputError("task has only local data: set --data-dir or PRICEBENCH_DATA", path=path, field="source")
    if data_dir is not None and not data_dir.is_dir():
        raise InputError("data directory not found", path=data_dir, field="data_dir")
    if eval_slice is not None:
        parse_slice(eval_slice, field="slice")
    return Task(spec=spec, data_dir=data_dir, eval_slice_override=eval_slice)


def all_tasks(data_dir=None, tasks_dir=None) -> list[Task]:
    return [load_task(p, data_dir=data_dir) for p in task_files(tasks_dir).values()]
