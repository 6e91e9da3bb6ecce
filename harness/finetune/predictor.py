"""`finetune:<recipe>`: a trained fine-tune as a model, wherever a model goes.

The recipe (a name in finetunes/ or a path to its YAML) says the base and how it was trained;
the task of the run decides the train split, so the adapter is found at run time: the adapter
id of (base weights, the task's train data, the recipe), in the adapter cache. The run's
identity holds that id (and the checkpoint, when one is asked for), so an evaluation names
the adapter it measured. The base loads as `hf:` loads it (a QLoRA recipe at 4-bit), with the
base prompt the adapter was trained on. Nothing trains here: an adapter not yet trained is an
error that says which `pricebench finetune` command makes it.

`-o base=hf:...` trains the recipe on another base (a template recipe names none), `-o
overrides={...}` changes the settings harness/finetune/variants.py lists: both are the recipe's,
so they change the adapter id. A recipe trained with in-context examples in its prompts is
evaluated with the same ones (`trained_in_context`, applied by retrieval.config.task_for).
"""
from __future__ import annotations

import dataclasses

from harness.errors import InputError
from harness.finetune.layout import CHECKPOINTS, FINAL, last_checkpoint
from harness.finetune.recipe import load_recipe
from harness.predictors.base import ModelSpec
from harness.predictors.hf.predictor import HFPredictor
from harness.predictors.hf.regression import HFRegressionPredictor
from harness.predictors.hf.regression_head import REGRESSION_FILE, read_head
from harness.predictors.options import option, runtime


class FinetunePredictor(HFPredictor):
    objective = "causal_lm"
    reads = "base prompt"               # what its label says the price comes from
    checkpoints = CHECKPOINTS           # where training saves them, inside the adapter folder
    prompts = (None, "base")
    prompt_advice = "the adapter was trained on the task's base prompt: --prompt base (or leave it out)"
    quant_advice = "the recipe decides the quantization (qlora: 4bit, else none): leave --quant out"

    class Options(HFPredictor.Options):
        checkpoint: int | None = option(None, ge=1, description="evaluate checkpoint-N instead of the final adapter")
        adapters: str | None = runtime(None, description="the adapter cache folder (default $PRICEBENCH_ADAPTERS)")
        base: str | None = option(None, description="the base to train the recipe on (hf:...; a template names none)")
        overrides: dict | None = option(None, description="recipe settings: max_steps, learning_rate, train_size, ...")

    def __init__(self, spec: ModelSpec):
        given = spec.options or {}
        if given.get("adapter") is not None:
            raise InputError("finetune: the recipe names the adapter; use hf:<base> -o adapter=<folder> for another",
                             field="adapter")
        if not spec.target:
            raise InputError("finetune: needs a recipe, e.g. finetune:smollm2-135m-lora-cpu", field="model")
        self.recipe = load_recipe(spec.target, base=given.get("base"), overrides=given.get("overrides"))
        if self.recipe.base is None:
            raise InputError(f"finetune: recipe {self.recipe.name} is a template (it names no base): add "
                             f"-o base=hf:<model> (a leaderboard: finetune: {{recipe, bases}})", field="base")
        if self.recipe.objective != self.objective:
            raise InputError(f"finetune: recipe {self.recipe.name} has objective {self.recipe.objective}",
                             field="model")
        if spec.quant not in ("none", self.recipe.quant):
            raise InputError(f"finetune: {self.quant_advice}", field="quant")
        merged = {**self.recipe.base_options, **(spec.options or {})}
        if self.recipe.method == "qlora":
            merged.setdefault("compute_dtype", self.recipe.qlora["compute_dtype"])
        # validated and loaded as hf: would load the base; stored and hashed under its own name
        super().__init__(dataclasses.replace(spec, name=self.recipe.base, quant=self.recipe.quant, options=merged))
        self.spec = dataclasses.replace(self.spec, name=spec.name)
        self._located: dict = {}
        self._training: dict | None = None

    @property
    def default_prompt(self) -> str:
        return "base"

    @property
    def kind(self) -> str:
        return "open-finetuned"

    @property
    def trained_in_context(self):
        """The in-context setting its training prompts showed (retrieval.InContext), or None: its evaluation
        shows the same shots (retrieval.config.task_for)."""
        return self.recipe.shots if self.recipe.in_context else None

    # --- which adapter ---------------------------------------------------------------------
    def locate(self, task) -> dict:
        """{id, folder, weights (what to load), checkpoint} of this recipe's adapter on `task`: the one
        `pricebench finetune` trains (apart from the task's own evaluation slice); the slice this run
        evaluates must not overlap what it trained on."""
        key = (str(task.spec.path), str(task.data_dir), task.eval_slice, task.strict)
        if key not in self._located:
            from harness.finetune.adapters import locate_adapter, training_task
            from harness.finetune.data import build_data, check_disjoint, training_items

            trained_on = training_task(task)
            train, validation = training_items(trained_on, self.recipe)
            check_disjoint(train + validation, task.eval_items(), what="the adapter's training data")
            base_weights = super().identity(task)["weights"]
            _, folder = locate_adapter(self.recipe, build_data(trained_on, self.recipe), base_weights,
                                       self.options.adapters)
            checkpoint = self.options.checkpoint
            weights = folder.path / (FINAL if checkpoint is None else f"{self.checkpoints}/checkpoint-{checkpoint}")
            self._located[key] = {"id": folder.adapter_id, "folder": folder, "weights": weights,
                                  "checkpoint": checkpoint}
        return self._located[key]

    def identity(self, task) -> dict:
        ident = super().identity(task)          # the base (self.adapter stays None until prepare)
        located = self.locate(task)
        ident["finetune"] = {"adapter_id": located["id"], "checkpoint": located["checkpoint"]}
        return ident

    def prepare(self, task) -> None:
        if self.model is not None:
            return
        located = self.locate(task)
        folder, weights = located["folder"], located["weights"]
        if located["checkpoint"] is None and not folder.is_complete():
            raise InputError(f"recipe {self.recipe.name} has no trained adapter for task {task.name} "
                             f"(id {located['id']}): run `pricebench finetune {self.spec.target} --task {task.name}` "
                             f"first", field="model")
        if not weights.is_dir() or (located["checkpoint"] is not None and not _complete_checkpoint(weights)):
            raise InputError(f"adapter {located['id']} has no complete {weights.name} yet (its checkpoints are in "
                             f"{folder.path / self.checkpoints})", field="checkpoint")
        self._before_load(weights)
        from harness.finetune.record import training_record

        self._training = training_record(self.recipe, located, folder.manifest())
        base = self.source
        if self.recipe.method == "full":
            self.source = str(weights)          # a full fine-tune is a whole model
        else:
            self.adapter = str(weights)
        try:
            super().prepare(task)
        finally:                                # identity() stays that of the base + the adapter id
            self.source, self.adapter = base, None

    def run_info(self) -> dict:
        """The hf: figures and the training record (harness/finetune/record.py): a report needs the
        run store alone, never the adapter cache."""
        info = super().run_info()
        return {**info, "training": self._training} if info and self._training else info

    def _before_load(self, weights) -> None:
        """What a subclass reads from the located adapter before the model loads."""

    def label(self) -> str:
        checkpoint = f" checkpoint {self.options.checkpoint}" if self.options.checkpoint else ""
        quant = "" if self.spec.quant == "none" else f" {self.spec.quant}"
        tuned = "".join(f" {key}={value}" for key, value in sorted((self.options.overrides or {}).items())
                        if key != "in_context")
        shots = f", {self.recipe.shots.describe()}" if self.recipe.in_context else ""
        return (f"{self.recipe.name}{tuned}{checkpoint} ({self.recipe.base[3:]} {self.recipe.method}{quant}, "
                f"{self.reads}{shots})")


def _complete_checkpoint(folder) -> bool:
    """A checkpoint can be evaluated while its training goes on, once transformers wrote its state (last)."""
    return last_checkpoint(folder.parent.parent, at_most=int(folder.name.removeprefix("checkpoint-"))) == folder


class FinetuneRegressionPredictor(FinetunePredictor, HFRegressionPredictor):
    """`finetune:<recipe>` for a recipe with `objective: regression`: the adapter's scalar head on
    log(price) gives the price (harness/predictors/hf/regression.py), found like any fine-tune."""

    objective = "regression"
    reads = "regression head"
    checkpoints = f"{FINAL}/{CHECKPOINTS}"   # harness/finetune/regression.py trains inside final/

    def _head_identity(self) -> dict:
        return {}                     # the adapter id (data, recipe, base weights) decides the head

    def _before_load(self, weights) -> None:
        self.head = read_head(weights)
        if self.head is None:
            raise InputError(f"{weights} holds no regression head ({REGRESSION_FILE}): train it again",
                             field="model")


def create(spec: ModelSpec) -> FinetunePredictor:
    options = spec.options or {}
    recipe = load_recipe(spec.target, base=options.get("base"), overrides=options.get("overrides")) \
        if spec.target else None
    if recipe is not None and recipe.objective == "regression":
        return FinetuneRegressionPredictor(spec)
    return FinetunePredictor(spec)


PREDICTOR = FinetunePredictor
