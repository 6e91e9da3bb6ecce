"""The task YAML schema: every key a task file may hold, checked strictly (unknown keys get a
"did you mean", values their type and shape), so a typo never silently changes what is run."""
from __future__ import annotations

from pathlib import Path

from harness.data import parse_slice
from harness.errors import InputError
from harness.scoring import HEADLINE_METRICS
from harness.yamlspec import Spec, check_keys, check_name, did_you_mean

TOP_KEYS = {"name", "description", "eval_slice", "metrics", "source", "prompts", "published", "published_source",
            "in_context"}
DEFAULT_METRICS = ["mae", "rmsle", "hit_rate"]              # the course's 2024 tester (course-v1)
METRICS = HEADLINE_METRICS       # from the metric schema (scoring.METRICS); mse, r2: the 2025 edition
SOURCE_KEYS = {"local", "hub"}
LOCAL_KEYS = {"test", "references", "train"}
LOCAL_TRAIN_KEYS = {"file", "slice"}
HUB_KEYS = {"dataset", "id_prefix", "test_split", "text_field", "train"}
HUB_TRAIN_KEYS = {"split", "slice"}
PROMPT_KEYS = {"base", "chat", "truncate"}
TRUNCATE_KEYS = {"tokens", "tokenizer"}
CHAT_KEYS = {"system", "user", "assistant_prefix"}
PUBLISHED_KEYS = {"run", "label", "kind", "source", "n", "mae", "rmsle", "hit_rate", "mse", "r2"}


def _mapping(spec: Spec, allowed, *keys) -> dict:
    node = spec.require(*keys, kind=dict)
    check_keys(spec, node, allowed, *keys)
    return node


def _data_path(spec: Spec, *keys) -> str:
    """A data file named by the spec: relative to the data folder and inside it (no '..'), or an
    explicit absolute path."""
    value = spec.require(*keys, kind=str)
    if not value.strip() or (not Path(value).is_absolute() and ".." in Path(value.replace("\\", "/")).parts):
        raise spec.error(f"{value!r} must be a path inside the data folder (no '..'), or an absolute path", *keys)
    return value


def validate(spec: Spec) -> Spec:
    check_keys(spec, spec, TOP_KEYS)
    check_name(spec, "name")
    for key in ("description", "published_source"):
        if key in spec:
            spec.require(key, kind=str)
    source = _mapping(spec, SOURCE_KEYS, "source")
    if "local" not in source and "hub" not in source:
        raise spec.error("needs 'local' and/or 'hub'", "source")
    if "local" in source:
        local = _mapping(spec, LOCAL_KEYS, "source", "local")
        _data_path(spec, "source", "local", "test")
        if "references" in local:
            _data_path(spec, "source", "local", "references")
        for n, part in enumerate(spec.require("source", "local", "train", kind=list)):
            _mapping(spec, LOCAL_TRAIN_KEYS, "source", "local", "train", n)
            _data_path(spec, "source", "local", "train", n, "file")
            parse_slice(part.get("slice"), path=spec.path, field=f"source.local.train.{n}.slice")
    if "hub" in source:
        hub = _mapping(spec, HUB_KEYS, "source", "hub")
        for key in ("dataset", "id_prefix") + (("text_field",) if "text_field" in hub else ()):
            spec.require("source", "hub", key, kind=str)
        if "test_split" in hub:
            spec.require("source", "hub", "test_split", kind=str)
        for n, part in enumerate(spec.require("source", "hub", "train", kind=list)):
            _mapping(spec, HUB_TRAIN_KEYS, "source", "hub", "train", n)
            spec.require("source", "hub", "train", n, "split", kind=str)
            parse_slice(part.get("slice"), path=spec.path, field=f"source.hub.train.{n}.slice")
    if spec.get("metrics") is not None:
        for n, name in enumerate(spec.require("metrics", kind=list)):
            if name not in METRICS:
                raise spec.error(f"unknown metric {name!r}{did_you_mean(str(name), METRICS)} "
                                 f"(known: {', '.join(METRICS)})", "metrics", n)
        if "mae" not in spec["metrics"]:
            raise spec.error("must include mae (every table ranks by it)", "metrics")
    prompts = _mapping(spec, PROMPT_KEYS, "prompts")
    if "truncate" in prompts:
        _mapping(spec, TRUNCATE_KEYS, "prompts", "truncate")
        tokens = spec.require("prompts", "truncate", "tokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= 100_000:
            raise spec.error(f"must be a whole number of tokens, got {tokens!r}", "prompts", "truncate", "tokens")
        spec.require("prompts", "truncate", "tokenizer", kind=str)
    base = spec.require("prompts", "base", kind=str)
    if "{text}" not in base:
        raise spec.error("must contain {text}", "prompts", "base")
    chat = _mapping(spec, CHAT_KEYS, "prompts", "chat")
    for key in ("system", "user"):
        spec.require("prompts", "chat", key, kind=str)
    if chat.get("assistant_prefix") is not None:
        spec.require("prompts", "chat", "assistant_prefix", kind=str)
    if "{text}" not in spec["prompts"]["chat"]["user"]:
        raise spec.error("must contain {text}", "prompts", "chat", "user")
    if isinstance(spec.get("eval_slice"), bool):
        raise spec.error("must be a slice such as '0:250' or 'all'", "eval_slice")
    parse_slice(spec.get("eval_slice"), path=spec.path, field="eval_slice")
    if spec.get("in_context") is not None:      # the task's default in-context examples (docs/in-context.md)
        from harness.retrieval import merge

        try:
            merge(None, spec.require("in_context", kind=dict))
        except InputError as e:
            raise spec.error(e.reason, "in_context", e.field) from None
    if spec.get("published") is not None:
        for n, row in enumerate(spec.require("published", kind=list)):
            _mapping(spec, PUBLISHED_KEYS, "published", n)
            spec.require("published", n, "run", kind=str)
            # mae always; the other figures where the task's headline metrics ask for them
            wanted = [k for k in ("mae", "rmsle", "hit_rate") if k in (spec.get("metrics") or DEFAULT_METRICS)]
            for key in [k for k in ("mae", "rmsle", "hit_rate", "mse") if k in wanted or k in row]:
                value = spec.require("published", n, key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e15:
                    raise spec.error(f"must be a non-negative number, got {value!r}", "published", n, key)
            count = row.get("n", 250)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise spec.error(f"must be a positive whole number of items, got {count!r}", "published", n, "n")
            r2 = row.get("r2", 0.0)
            if isinstance(r2, bool) or not isinstance(r2, (int, float)) or not -1e15 < r2 <= 1:
                raise spec.error(f"must be a number up to 1, got {r2!r}", "published", n, "r2")
    return spec
