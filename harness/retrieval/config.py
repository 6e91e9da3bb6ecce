"""What in-context examples a run shows: how many (`shots`), chosen how (`shot_selector`: random or
nearest, and for nearest a `retriever`), with which seed, and for chat prompts in which shape.

The same five settings come from a task's YAML (`in_context:`, the task's default), a
leaderboard entry (axes, like quant and prompt), the CLI (`--shots`, `--shot-selector`,
`--retriever`, `--shot-seed`, `--shot-format`) and the Python API (`in_context={...}`). Every bad
value is an InputError naming the option as the user wrote it; a later layer overrides an
earlier one key by key (choosing `random` drops an earlier `retriever`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from harness.errors import InputError
from harness.yamlspec import did_you_mean

SELECTORS = ("random", "nearest")
RETRIEVERS = ("tfidf", "bm25", "embeddings")
FORMATS = ("message", "turns")           # chat: the course's one RAG message, or user/assistant pairs
DEFAULT_RETRIEVER = "tfidf"
DEFAULT_SEED = 42
MAX_SHOTS = 64
RENDER_VERSION = 1                        # bump when the framing text of harness/retrieval/render.py changes
KEYS = ("shots", "shot_selector", "retriever", "shot_seed", "shot_format")
CLI_FLAGS = {key: "--" + key.replace("_", "-") for key in KEYS}


@dataclass(frozen=True)
class InContext:
    """The in-context setting of a run (shots == 0: none, the zero-shot prompt)."""

    shots: int = 0
    selector: str = "random"
    retriever: str | None = None          # nearest only
    seed: int = DEFAULT_SEED              # random only
    format: str = "message"               # chat prompts only

    @property
    def active(self) -> bool:
        return self.shots > 0

    def describe(self) -> str:
        """'5-shot nearest (tfidf)', '1-shot random', 'zero-shot': for labels and tables."""
        if not self.active:
            return "zero-shot"
        how = f"nearest ({self.retriever})" if self.selector == "nearest" else "random"
        if self.selector == "random" and self.seed != DEFAULT_SEED:
            how += f" seed {self.seed}"
        return f"{self.shots}-shot {how}" + (" as turns" if self.format == "turns" else "")

    def slug(self) -> str:
        """'5shot_nearest_tfidf', '1shot_random': for file and task names ('' when zero-shot)."""
        if not self.active:
            return ""
        how = f"nearest_{self.retriever}" if self.selector == "nearest" else "random"
        seed = f"_seed{self.seed}" if self.selector == "random" and self.seed != DEFAULT_SEED else ""
        return f"{self.shots}shot_{how}{seed}" + ("_turns" if self.format == "turns" else "")

    def as_options(self) -> dict:
        """The setting as option keys (what a manifest records and `from_options` reads back)."""
        if not self.active:
            return {}
        out = {"shots": self.shots, "shot_selector": self.selector}
        if self.selector == "nearest":
            out["retriever"] = self.retriever
        else:
            out["shot_seed"] = self.seed
        if self.format != "message":
            out["shot_format"] = self.format
        return out


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) <= 12:
            value = int(value)
        else:
            raise InputError(f"must be a whole number, got {_shown(value)}", field=name)
    if not low <= value <= high:
        raise InputError(f"must be between {low} and {high:,}, got {value}", field=name)
    return value


def _choice(value, name: str, choices) -> str:
    if value not in choices:
        raise InputError(f"must be one of {', '.join(choices)}, got {_shown(value)}{did_you_mean(value, choices)}",
                         field=name)
    return value


def merge(base: InContext | None, values: dict | None, *, names: dict | None = None) -> InContext:
    """`base` overridden by `values` (option keys; None = not given), checked.

    names: how each key is named in errors (CLI flags, YAML paths); default the key itself.
    A setting that makes no sense as given (a retriever with random shots, a selector with
    no shots) is refused rather than ignored: the user meant something else.
    """
    mention = (lambda key, value: f"{names[key]} {value}") if names else \
        (lambda key, value: f"{key}: {value} ({CLI_FLAGS[key]} {value})")      # the API's key, and its flag
    names = {key: key for key in KEYS} | (names or {})
    given = {k: v for k, v in (values or {}).items() if v is not None}
    unknown = [k for k in given if k not in KEYS]
    if unknown:
        raise InputError(f"unknown in-context option{did_you_mean(unknown[0], KEYS)} (known: {', '.join(KEYS)})",
                         field=str(unknown[0]))
    ic = base or InContext()
    if "shots" in given:
        ic = replace(ic, shots=_whole(given["shots"], names["shots"], 0, MAX_SHOTS))
    if "shot_selector" in given:
        selector = _choice(given["shot_selector"], names["shot_selector"], SELECTORS)
        ic = replace(ic, selector=selector, retriever=ic.retriever if selector == "nearest" else None)
    if "retriever" in given:
        if ic.selector != "nearest":
            raise InputError(f"a retriever chooses nearest shots: add {mention('shot_selector', 'nearest')}",
                             field=names["retriever"])
        ic = replace(ic, retriever=_choice(given["retriever"], names["retriever"], RETRIEVERS))
    if "shot_seed" in given:
        if ic.selector != "random":
            raise InputError("the seed chooses random shots; nearest shots have none", field=names["shot_seed"])
        ic = replace(ic, seed=_whole(given["shot_seed"], names["shot_seed"], 0, 2**32 - 1))
    if "shot_format" in given:
        ic = replace(ic, format=_choice(given["shot_format"], names["shot_format"], FORMATS))
    if not ic.active:
        extra = [k for k in given if k != "shots"]
        if extra:
            raise InputError(f"has no effect without in-context examples: add {mention('shots', 'K')} (K >= 1)",
                             field=names[extra[0]])
        return InContext()
    if ic.selector == "nearest" and ic.retriever is None:
        ic = replace(ic, retriever=DEFAULT_RETRIEVER)
    return ic


def applicable(values: dict) -> dict:
    """One combination of leaderboard axes without the keys that do not apply to it (what 0 shots,
    random or nearest shots ignore), so every combination is a valid setting."""
    values = {k: v for k, v in values.items() if v is not None}
    if values.get("shots") == 0:
        return {"shots": 0}
    if values.get("shot_selector", "random") == "random":
        values.pop("retriever", None)
    else:
        values.pop("shot_seed", None)
    return values


def from_options(values: dict | None) -> InContext:
    """An InContext from option keys (a manifest's `in_context`, a leaderboard job's axes)."""
    return merge(None, values)


def task_for(task, predictor):
    """The task as this predictor runs it. A task's own default (`in_context:` in its YAML) does not
    apply where it cannot: none for a predictor that reads no prompt (a recorded run, a fitted
    baseline), the one-message format for a base prompt. Asked for explicitly, either is refused
    (`check_reader`). A fine-tune trained with shots in its prompts (`trained_in_context`) is
    asked with the same ones; asked for others, it refuses."""
    trained = getattr(predictor, "trained_in_context", None)
    if trained is not None:
        if task.in_context_override is not None and task.in_context_override != trained:
            raise InputError(f"{predictor.spec.name} was trained with {trained.describe()} examples in its prompts "
                             f"and is evaluated with the same: drop --shots (asked: "
                             f"{task.in_context_override.describe()})", field="shots")
        return task.with_in_context(trained)
    ic = task.in_context
    if not ic.active or task.in_context_override is not None:
        return task
    if not (predictor.reads_prompt or getattr(predictor, "reads_shots", False)):
        return task.with_in_context(InContext())
    if ic.format == "turns" and predictor.prompt_style != "chat":
        return task.with_in_context(replace(ic, format="message"))
    return task


def check_reader(ic: InContext, predictor) -> None:
    """In-context examples only for predictors that read them (a language model's prompt, baseline:knn)."""
    if not ic.active:
        return
    if not (predictor.reads_prompt or getattr(predictor, "reads_shots", False)):
        raise InputError(f"{predictor.spec.name} reads the item, not a prompt: in-context examples would change "
                         f"nothing but the run id; drop --shots", field="shots")
    if ic.format == "turns" and predictor.prompt_style != "chat":
        raise InputError("turns are chat messages: the base prompt shows its examples as completed prompts; "
                         "use --prompt chat or drop --shot-format", field="shot_format")
