"""What the Ray driver sends a worker, which shares no disk with it: the task as the driver loaded it
(`ShippedTask`: its items travel with it), and a `finetune:` job's adapter (the folder it evaluates,
as tar bytes, and the recipe when it was given as a path).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.errors import InputError
from harness.finetune.adapters import AdapterFolder
from harness.finetune.layout import MANIFEST
from harness.finetune.shipping import pack, unpack
from harness.tasks import Task


class ShippedTask(Task):
    """A task as the driver loaded it: its items (and its train split, when the run's identity
    read it) travel with it; nothing is read from a data folder on the worker."""

    @classmethod
    def of(cls, task: Task) -> "ShippedTask":
        shipped = cls(spec=task.spec, data_dir=task.data_dir, eval_slice_override=task.eval_slice_override,
                      strict=task.strict, in_context_override=task.in_context_override, _cache=dict(task._cache))
        for name in ("eval_hash", "train_hash"):        # computed on the driver: keep them
            if name in vars(task):
                vars(shipped)[name] = vars(task)[name]
        return shipped

    def _test_items(self):
        return self._cache["test"]

    def train_items(self):
        if "train" not in self._cache:
            raise InputError(f"task {self.name}: its train split was not sent to the Ray worker (the driver "
                             "sends it when the run's identity reads it, as a predictor that trains must: "
                             "put task.train_hash in Predictor.identity)", field="train")
        return self._cache["train"]

    @property
    def references_path(self):
        return None


def ship_adapter(predictor, task) -> dict | None:
    """What a worker needs to evaluate a `finetune:` job: the adapter id, the checkpoint and the folder it
    loads (relative to the adapter folder) as tar bytes, and a recipe given as a path (the worker may not
    see the driver's files); None for any other predictor or a missing adapter."""
    if predictor.spec.backend != "finetune":
        return None
    located = predictor.locate(task)
    root, weights = located["folder"].path, located["weights"]
    if not weights.is_dir():
        return None                     # the worker's predictor says what is missing
    relative = weights.relative_to(root)
    recipe = predictor.recipe.path if predictor.spec.target.endswith((".yaml", ".yml")) else None
    return {"id": located["id"], "checkpoint": located["checkpoint"], "weights": str(relative),
            "tar": pack(root, [MANIFEST, str(relative)]),
            "recipe": {"name": Path(recipe).name, "text": Path(recipe).read_text(encoding="utf-8")} if recipe else None}


def spec_on_worker(spec, shipped: dict, into: Path):
    """The job's spec on the worker: a recipe path replaced by the copy the driver sent."""
    if not shipped.get("recipe"):
        return spec
    path = Path(into) / "recipe" / Path(shipped["recipe"]["name"]).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(shipped["recipe"]["text"], encoding="utf-8")
    return dataclasses.replace(spec, name=f"finetune:{path}")


def use_shipped_adapter(predictor, shipped: dict, into: Path) -> None:
    """On the worker: unpack the adapter under `into` and make the predictor load it from there (its
    `locate` answers with the driver's adapter id; the worker has no train split to recompute it)."""
    folder = AdapterFolder(unpack(shipped["tar"], Path(into) / shipped["id"]))
    located = {"id": shipped["id"], "folder": folder, "weights": folder.path / shipped["weights"],
               "checkpoint": shipped["checkpoint"]}
    predictor.locate = lambda _task: located
