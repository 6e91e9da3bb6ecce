"""Price tasks: a declarative YAML spec per task (tasks/*.yaml) and the registry over them.

A task says where its items come from (offline files under a data directory, else the
Hugging Face hub), which slice is evaluated, what the model trains on, and how items
become prompts. A new task is a YAML file, no code.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from harness.data import (Item, content_duplicates, data_hash, load_hub_items, parse_slice, read_items,
                          read_items_with_lines)
from harness.errors import InputError
from harness.task_schema import DEFAULT_METRICS, validate
from harness.yamlspec import Spec, did_you_mean, load_spec

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
    strict: bool = False            # a content duplicate of an evaluation item in the train split is an error
    in_context_override: object = None   # a retrieval.InContext (run, suite, CLI); None = the spec's `in_context:`
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
    def metrics(self) -> list[str]:
        """The headline metrics the task's tables show (default: the course's MAE, RMSLE, hits)."""
        return list(self.spec.get("metrics") or DEFAULT_METRICS)

    @property
    def truncate(self) -> dict | None:
        """The base prompt's cut of the item text: {tokens, tokenizer} (the 2025 Llama prompt)."""
        return self.spec["prompts"].get("truncate")

    @property
    def in_context(self):
        """The in-context examples its prompts show (harness.retrieval.InContext; shots 0 = none)."""
        if self.in_context_override is not None:
            return self.in_context_override
        from harness.retrieval import merge

        return merge(None, self.spec.get("in_context"))      # checked by the schema already

    def with_in_context(self, values, names: dict | None = None) -> "Task":
        """This task with its in-context setting overridden key by key (values: option keys, or an
        InContext); the copy shares the loaded items. Errors name each key as `names` says."""
        from harness.retrieval import InContext, merge

        if isinstance(values, InContext):
            return dataclasses.replace(self, in_context_override=values)
        if not values or all(value is None for value in values.values()):     # nothing given: the task's own
            return self
        return dataclasses.replace(self, in_context_override=merge(self.in_context, values, names=names))

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
                self._cache["test"] = load_hub_items(hub["dataset"], hub.get("test_split", "test"), hub["id_prefix"],
                                                     text_field=hub.get("text_field", "text"))
        return self._cache["test"]

    def eval_items(self) -> list[Item]:
        """The evaluation slice (default: the course's first 250 test items)."""
        items = self._test_items()[parse_slice(self.eval_slice, path=self.spec.path, field="eval_slice")]
        if not items:
            raise InputError(f"slice {self.eval_slice!r} selects no items", path=self.spec.path, field="eval_slice")
        return items

    def train_items(self) -> list[Item]:
        """The train split (e.g. the course's pool plus this task's unused test items), without any
        item that is an evaluation item by id (an error) or by content (excluded and counted:
        `train_excluded`; an error when the task is strict)."""
        if "train" in self._cache:
            return self._cache["train"]
        items, origins = [], []          # origins[i]: (file or dataset, line or row) of items[i]
        if self.is_local:
            for n, part in enumerate(self.spec["source"]["local"]["train"]):
                s = parse_slice(part.get("slice"), path=self.spec.path, field=f"source.local.train.{n}.slice")
                path = self.data_dir / part["file"]
                got, lines = read_items_with_lines(path, s)
                items += got
                origins += [(path, line) for line in lines]
        else:
            hub = self.spec["source"]["hub"]
            for n, part in enumerate(hub["train"]):
                s = parse_slice(part.get("slice"), path=self.spec.path, field=f"source.hub.train.{n}.slice")
                # test-split items keep the eval ids (amazon8-0250...); other splits get their own
                prefix = hub["id_prefix"] if part["split"] == hub.get("test_split", "test") \
                    else f"{hub['id_prefix']}-{part['split']}"
                got = load_hub_items(hub["dataset"], part["split"], prefix, s, text_field=hub.get("text_field", "text"))
                items += got
                origins += [(f"{hub['dataset']}[{part['split']}]", None)] * len(got)
        evaluation = self.eval_items()
        eval_ids = {item.id for item in evaluation}
        leaked = [item.id for item in items if item.id in eval_ids]
        if leaked:
            raise InputError(f"train split contains evaluation items ({leaked[0]}, ...)", path=self.spec.path,
                             line=self.spec.line_of("source"), field="source.train")
        duplicates = content_duplicates(items, evaluation)
        if duplicates and self.strict:
            n, twin, by = duplicates[0]
            path, line = origins[n]
            raise InputError(f"train item {items[n].id} duplicates evaluation item {twin.id} by {by} "
                             f"({len(duplicates)} such train item(s); without --strict they are excluded)",
                             path=path, line=line, field=by)
        self._cache["excluded"] = [{"id": items[n].id, "duplicates": twin.id, "by": by} for n, twin, by in duplicates]
        dropped = {n for n, _, _ in duplicates}
        items = [item for n, item in enumerate(items) if n not in dropped]
        self._cache["train"] = items
        return items

    @property
    def train_excluded(self) -> list[dict]:
        """Train items left out as content duplicates of evaluation items: {id, duplicates, by}."""
        self.train_items()
        return list(self._cache["excluded"])

    def train_exclusions_if_loaded(self) -> list[dict] | None:
        """train_excluded when the train split was already loaded (None: nothing used it)."""
        return list(self._cache["excluded"]) if "excluded" in self._cache else None

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
        identity = {"name": self.name, "eval_slice": self.eval_slice, "eval_hash": self.eval_hash,
                    "prompts": self.spec["prompts"]}
        if self.spec.get("metrics") and self.metrics != DEFAULT_METRICS:
            identity["metrics"] = self.metrics     # only tasks that choose other headline metrics
        if self.in_context.active:                 # only runs that show examples: zero-shot ids never change
            from harness.retrieval import identity as in_context_identity

            identity["in_context"] = in_context_identity(self, self.in_context)
        return identity


# The schema's keys at every level: an unknown key is a typo (`eval_slise` would silently
# evaluate all 2,000 items), so it is refused with a "did you mean".
def task_files(tasks_dir: Path | None = None) -> dict[str, Path]:
    folder = Path(tasks_dir or TASKS_DIR)
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_task(name_or_path, data_dir=None, eval_slice: str | None = None, tasks_dir=None, strict: bool = False) -> Task:
    """A task by registry name or by path to a YAML file.

    data_dir: offline data folder; defaults to $PRICEBENCH_DATA; None means the hub.
    """
    path = Path(str(name_or_path))
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise InputError("task file not found", path=name_or_path, field="task")
    else:
        # a registry name, never a path: `../../x` is looked up among the known names only
        files = task_files(tasks_dir)
        if str(name_or_path) not in files:
            raise InputError(f"unknown task {str(name_or_path)!r}{did_you_mean(name_or_path, files)} "
                             f"(known: {', '.join(files) or 'none'}; or give a path to a task .yaml)", field="task")
        path = files[str(name_or_path)]
    spec = validate(load_spec(path))
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    if data_dir is not None and "local" not in spec["source"]:
        data_dir = None
    if data_dir is None and "hub" not in spec["source"]:
        raise InputError("task has only local data: set --data-dir or PRICEBENCH_DATA", path=path, field="source")
    if data_dir is not None and not data_dir.is_dir():
        raise InputError("data directory not found", path=data_dir, field="data_dir")
    if eval_slice is not None:
        parse_slice(eval_slice, field="slice")
    return Task(spec=spec, data_dir=data_dir, eval_slice_override=eval_slice, strict=strict)


def all_tasks(data_dir=None, tasks_dir=None, strict: bool = False) -> list[Task]:
    return [load_task(p, data_dir=data_dir, strict=strict) for p in task_files(tasks_dir).values()]
