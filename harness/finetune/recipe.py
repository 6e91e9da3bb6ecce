"""Fine-tuning recipes: a YAML file per recipe (finetunes/*.yaml), loaded by name or path and
checked strictly, so a typo (`learning_rat`) never silently trains with a default.

A recipe names its base model (any `hf:` spec, with hf options) or none (a template: the base
comes from a leaderboard's `bases:`, `--base` or `-o base=`), the method (lora | qlora | full), the
objective (causal_lm | regression), the data (train subset, validation size), optional in-context
examples in every training prompt (`in_context:`, harness/retrieval's settings) and the training
settings. Another base and a few settings a user varies can be given without a new file
(harness/finetune/variants.py: written into the loaded YAML and checked as if the file said them).
Every failure is an InputError naming the file, line and field.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.data import parse_slice
from harness.errors import InputError
from harness.yamlspec import Spec, check_keys, check_name, did_you_mean, load_spec

RECIPES_DIR = Path(os.environ.get("PRICEBENCH_FINETUNES",
                                  Path(__file__).resolve().parent.parent.parent / "finetunes"))
METHODS = ("lora", "qlora", "full")
OBJECTIVES = ("causal_lm", "regression")
PRECISIONS = ("fp32", "bf16", "auto")      # auto: bf16 where the device has it natively, else fp32
SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial",
             "inverse_sqrt")
COMPUTE_DTYPES = ("bfloat16", "float16", "float32")

TOP_KEYS = {"name", "description", "base", "method", "objective", "task", "data", "lora", "qlora", "training",
            "in_context"}
BASE_KEYS = {"model", "options"}
DATA_KEYS = {"train", "validation", "validation_mae_items"}
LORA_KEYS = {"r", "alpha", "dropout", "target_modules"}
QLORA_KEYS = {"compute_dtype"}         # 4-bit nf4 + double quantization, as the evaluator loads it
TRAINING_KEYS = {"learning_rate", "schedule", "warmup_ratio", "epochs", "max_steps", "batch_size", "grad_accum",
                 "max_length", "weight_decay", "max_grad_norm", "optimizer", "seed", "precision", "device",
                 "eval_every", "save_every", "threads"}
DEVICE_WORDS = ("auto", "cpu", "cuda", "mps", "xpu")
# Fields that change where or how fast training runs, not what it produces: kept out of the adapter id.
RUNTIME_FIELDS = ("device", "threads")


@dataclass(frozen=True)
class Recipe:
    """A validated recipe, every default filled in (what the adapter id hashes, normalized)."""

    name: str
    base: str | None = None                     # an hf: model spec, e.g. hf:smollm2-135m-instruct; None: a template
    method: str = "lora"
    objective: str = "causal_lm"
    description: str = ""
    task: str | None = None                     # the default task (the CLI's --task overrides it)
    base_options: dict = field(default_factory=dict)
    train: str | int = "all"                    # a count (seeded sample), a "START:END" slice, or all
    validation: int = 64                        # items held out of the train split
    validation_mae_items: int = 16              # of those, priced by greedy generation at each evaluation
    lora: dict = field(default_factory=lambda: {"r": 32, "alpha": 64, "dropout": 0.1,
                                                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]})
    qlora: dict = field(default_factory=lambda: {"compute_dtype": "bfloat16"})
    learning_rate: float = 1e-4
    schedule: str = "cosine"
    warmup_ratio: float = 0.0
    epochs: float | None = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 256
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"
    seed: int = 42
    precision: str = "bf16"
    device: str = "auto"
    threads: int | str = "auto"                 # CPU threads; auto: torch's, or 1 when the box is already busy
    eval_every: int | None = None               # steps; None = once, at the end
    save_every: int | None = None               # steps; None = only the final adapter
    in_context: dict = field(default_factory=dict)   # shots in every training prompt (retrieval option keys)
    path: str | None = field(default=None, compare=False)

    @property
    def quant(self) -> str:
        """The --quant the base is loaded with, for training and for evaluation."""
        return "4bit" if self.method == "qlora" else "none"

    def identity(self) -> dict:
        """What decides the trained weights: every field but the name, description, file and device."""
        skip = {"name", "description", "path", "task", *RUNTIME_FIELDS}
        if not self.in_context:
            skip.add("in_context")                      # adapters trained without shots keep their ids
        if self.method == "full":
            skip.add("lora")
        if self.method != "qlora":
            skip.add("qlora")
        ident = {k: v for k, v in sorted(asdict(self).items()) if k not in skip}
        ident["precision"] = self.resolved_precision     # auto trains as bf16 or fp32: the weights differ
        return ident

    @property
    def resolved_precision(self) -> str:
        """bf16 or fp32: `auto` is bf16 where the training device multiplies bf16 natively."""
        if self.precision != "auto":
            return self.precision
        from harness.finetune.train import resolve_device
        from harness.predictors.hf.hardware import fast_precision

        return fast_precision(resolve_device(self.device))

    def with_max_steps(self, steps: int | None) -> "Recipe":
        return self if steps is None else replace(self, max_steps=steps)

    @property
    def shots(self):
        """The retrieval.InContext its training prompts (and so its evaluation prompts) show."""
        from harness.retrieval.config import from_options

        return from_options(self.in_context)

    def with_threads(self, threads: int | None) -> "Recipe":
        return self if threads is None else replace(self, threads=threads)

    def describe(self) -> str:
        return json.dumps(self.identity(), sort_keys=True)


def recipe_files(folder=None) -> dict[str, Path]:
    folder = Path(folder or RECIPES_DIR)
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


def load_recipe(name_or_path, folder=None, *, base: str | None = None, overrides: dict | None = None) -> Recipe:
    """A recipe by name (finetunes/<name>.yaml) or by path to a YAML file; `base` (an hf: spec)
    replaces its base, `overrides` (OVERRIDES' names) its settings. An error in either names
    `base` or `overrides.<name>` (the caller says where the user wrote it)."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")):
        path = Path(text).expanduser()
        if not path.is_file():
            raise InputError("recipe file not found", path=text, field="recipe")
    else:
        files = recipe_files(folder)
        if text not in files:
            raise InputError(f"unknown recipe {text!r}{did_you_mean(text, files)} (known: "
                             f"{', '.join(files) or 'none'}; or give a path to a recipe .yaml)", field="recipe")
        path = files[text]
    spec = load_spec(path)
    if base is None and not overrides:
        return validate(spec)
    from harness.finetune.variants import customize

    return customize(spec, base, overrides, validate)


# --- the schema --------------------------------------------------------------------------------
def _number(spec: Spec, *keys, kind=float, low=None, high=None, low_open=False, none_ok=False):
    value = spec.require(*keys) if not none_ok else _get(spec, *keys)
    if value is None and none_ok:
        return None
    word = "whole number" if kind is int else "number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)) \
            or not math.isfinite(value):
        raise spec.error(f"must be a {word}, got {value!r}", *keys)
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        bounds = f"{'over' if low_open else 'at least'} {low}" if high is None else f"between {low} and {high:,}"
        raise spec.error(f"must be {bounds}, got {value!r}", *keys)
    return kind(value)


def _get(spec: Spec, *keys):
    node = spec
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _choice(spec: Spec, choices, default, *keys) -> str:
    value = _get(spec, *keys)
    if value is None:
        return default
    if value not in choices:
        raise spec.error(f"must be one of {', '.join(choices)}, got {value!r}{did_you_mean(value, choices)}", *keys)
    return value


def _mapping(spec: Spec, allowed, *keys) -> dict:
    node = _get(spec, *keys)
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise spec.error(f"must be a mapping ({', '.join(sorted(allowed))})", *keys)
    check_keys(spec, node, allowed, *keys)
    return node


def _base(spec: Spec) -> tuple[str | None, dict]:
    if spec.get("base") is None:
        return None, {}                 # a template: the base comes from a leaderboard, --base or -o base=
    value = spec.require("base")
    if isinstance(value, str):
        model, options = value, {}
    elif isinstance(value, dict):
        check_keys(spec, value, BASE_KEYS, "base")
        model = spec.require("base", "model", kind=str)
        options = value.get("options") or {}
        if not isinstance(options, dict):
            raise spec.error("must be a mapping of hf: options", "base", "options")
    else:
        raise spec.error("must be an hf: model spec (hf:<checkpoint|folder|alias>) or a mapping {model, options}",
                         "base")
    keys = ("base",) if isinstance(value, str) else ("base", "model")
    if not model.startswith("hf:") or len(model) <= 3:
        raise spec.error(f"must be an hf: model spec such as hf:smollm2-135m-instruct, got {model!r}", *keys)
    from harness.predictors.hf.predictor import HFPredictor

    for name in ("adapter", "batch_size", "device"):
        if name in options:
            raise spec.error("is set by the recipe, not by the base's options", "base", "options", name)
    try:
        HFPredictor.Options.parse(options, backend="hf")
    except InputError as e:
        raise spec.error(e.reason, "base", "options", e.field or "") from None
    return model, dict(options)


def _train_subset(spec: Spec):
    value = _get(spec, "data", "train")
    if value is None or value == "all":
        return "all"
    if isinstance(value, int) and not isinstance(value, bool):
        return _number(spec, "data", "train", kind=int, low=1, high=100_000_000)
    if isinstance(value, str):
        parse_slice(value, path=spec.path, field="data.train")
        return value
    raise spec.error(f"must be a count, a 'START:END' slice or all, got {value!r}", "data", "train")


def _lora(spec: Spec) -> dict:
    node = _mapping(spec, LORA_KEYS, "lora")
    lora = dict(Recipe.__dataclass_fields__["lora"].default_factory())
    if "r" in node:
        lora["r"] = _number(spec, "lora", "r", kind=int, low=1, high=4096)
    if "alpha" in node:
        lora["alpha"] = _number(spec, "lora", "alpha", low=0, low_open=True, high=1_000_000)
    if "dropout" in node:
        lora["dropout"] = _number(spec, "lora", "dropout", low=0, high=0.99)
    if "target_modules" in node:
        modules = spec.require("lora", "target_modules")
        if modules == "all-linear":
            lora["target_modules"] = modules
        elif not isinstance(modules, list) or not modules or not all(isinstance(m, str) and m for m in modules):
            raise spec.error("must be a list of module names (q_proj, ...) or all-linear", "lora", "target_modules")
        else:
            lora["target_modules"] = list(modules)
    return lora


def _training(spec: Spec) -> dict:
    node = _mapping(spec, TRAINING_KEYS, "training")
    t = ("training",)
    out: dict = {}
    if "learning_rate" in node:
        out["learning_rate"] = _number(spec, *t, "learning_rate", low=0, low_open=True, high=10)
    out["schedule"] = _choice(spec, SCHEDULES, "cosine", *t, "schedule")
    if "warmup_ratio" in node:
        out["warmup_ratio"] = _number(spec, *t, "warmup_ratio", low=0, high=1)
    if "epochs" in node:
        out["epochs"] = _number(spec, *t, "epochs", low=0, low_open=True, high=1000, none_ok=True)
    out["max_steps"] = _number(spec, *t, "max_steps", kind=int, low=1, high=10_000_000, none_ok=True)
    if out.get("epochs", 1.0) is None and out["max_steps"] is None:
        raise spec.error("give epochs or max_steps", *t, "epochs")
    for key, high in (("batch_size", 65_536), ("grad_accum", 65_536), ("max_length", 1_000_000), ("seed", 2**32 - 1)):
        if key in node:
            out[key] = _number(spec, *t, key, kind=int, low=0 if key == "seed" else 1, high=high)
    for key in ("weight_decay", "max_grad_norm"):
        if key in node:
            out[key] = _number(spec, *t, key, low=0, high=1e6)
    if "optimizer" in node:
        from transformers.training_args import OptimizerNames

        out["optimizer"] = _choice(spec, [o.value for o in OptimizerNames], "adamw_torch", *t, "optimizer")
    out["precision"] = _choice(spec, PRECISIONS, "bf16", *t, "precision")
    if "device" in node:
        device = spec.require(*t, "device", kind=str)
        head, _, index = device.partition(":")
        if head not in DEVICE_WORDS or (index and not index.isdigit()) or (index and head in ("auto", "cpu", "mps")):
            raise spec.error(f"must be auto, cpu, cuda, cuda:N, mps, xpu or xpu:N, got {device!r}", *t, "device")
        out["device"] = device
    if "threads" in node and node["threads"] != "auto":
        out["threads"] = _number(spec, *t, "threads", kind=int, low=1, high=4096)
    for key in ("eval_every", "save_every"):
        out[key] = _number(spec, *t, key, kind=int, low=1, high=10_000_000, none_ok=True)
    return out


def _task(spec: Spec) -> str:
    """A registered task name, or a path to a task YAML (relative to the recipe's folder)."""
    value = spec.require("task", kind=str)
    if value.endswith((".yaml", ".yml")):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else (Path(spec.path).parent / path)
        if not path.is_file():
            raise spec.error(f"task file {path} not found", "task")
        return str(path)
    from harness.tasks import task_files

    known = task_files()
    if value not in known:
        raise spec.error(f"unknown task {value!r}{did_you_mean(value, known)} (known: {', '.join(known)})", "task")
    return value


def _in_context(spec: Spec) -> dict:
    """`in_context: {shots, shot_selector, retriever, shot_seed}`: harness/retrieval's own settings and checks."""
    from harness.retrieval.config import KEYS, merge

    node = _mapping(spec, set(KEYS), "in_context")
    try:
        ic = merge(None, node, names={key: f"in_context.{key}" for key in KEYS})
    except InputError as e:
        raise spec.error(e.reason, *(e.field or "in_context").split(".")) from None
    if ic.format != "message":
        raise spec.error("a fine-tune trains on the base prompt: its shots are completed prompts, not chat turns",
                         "in_context", "shot_format")
    return ic.as_options()


def validate(spec: Spec) -> Recipe:
    check_keys(spec, spec, TOP_KEYS)
    name = check_name(spec, "name")
    description = spec.require("description", kind=str) if "description" in spec else ""
    base, base_options = _base(spec)
    method = _choice(spec, METHODS, "lora", "method")
    objective = _choice(spec, OBJECTIVES, "causal_lm", "objective")
    if objective == "regression" and method == "full":
        raise spec.error("regression trains a LoRA adapter and a scalar head: use method lora or qlora", "method")
    task = _task(spec) if "task" in spec else None
    data = _mapping(spec, DATA_KEYS, "data")
    validation = _number(spec, "data", "validation", kind=int, low=0, high=1_000_000) if "validation" in data else 64
    mae_items = _number(spec, "data", "validation_mae_items", kind=int, low=0, high=1_000_000) \
        if "validation_mae_items" in data else min(16, validation)
    if mae_items > validation:
        raise spec.error(f"must be at most data.validation ({validation})", "data", "validation_mae_items")
    if "lora" in spec and method == "full":
        raise spec.error("a full fine-tune trains every weight: remove 'lora' or use method lora / qlora", "lora")
    if "qlora" in spec and method != "qlora":
        raise spec.error("only with method: qlora", "qlora")
    qlora = dict(Recipe.__dataclass_fields__["qlora"].default_factory())
    _mapping(spec, QLORA_KEYS, "qlora")
    qlora["compute_dtype"] = _choice(spec, COMPUTE_DTYPES, qlora["compute_dtype"], "qlora", "compute_dtype")
    return Recipe(name=name, base=base, base_options=base_options, method=method, objective=objective,
                  description=description, task=task, train=_train_subset(spec), validation=validation,
                  validation_mae_items=mae_items, lora=_lora(spec), qlora=qlora, in_context=_in_context(spec),
                  path=str(spec.path), **_training(spec))
