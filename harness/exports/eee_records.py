"""One leaderboard row as Every Eval Ever (EEE) records: an aggregate log and its per-item rows.

The shapes are every-eval-ever 0.3.0's schemas (`eval.schema.json`, `instance_level_eval.schema.json`):
- the aggregate: one `evaluation_results` entry per metric of `harness.scoring.METRICS` that the run
  has a finite value for (label, description, lower-is-better from that table; the MAE with its
  bootstrap 95% CI), the generation settings, where the figures come from (measured by pricebench,
  recorded by the course, or published), the task and its data hash, and the library versions;
- the per-item rows: one per item (its text, the prompt the model saw, the reply, the parsed guess,
  the true price), scored by its absolute error (the MAE's item) and "correct" when it is a hit.
A published figure has no items: it becomes an aggregate of kind `documentation` only.
Every file name is a UUID derived from the run id, so exporting a run again rewrites its files.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import statistics
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from harness.versions import pricebench_version
from harness.runs.record import RunManifest
from harness.scoring import METRICS, SCORING_VERSION

SCHEMA_VERSION = "0.3.0"
UNITS = {"USD": "USD", "%": "percent"}
RANGES = {"percent": (0.0, 100.0), "r2": ("-Infinity", 1.0)}     # else [0, Infinity): errors are >= 0
HF_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
RESERVED = {"data", "con", "prn", "aux", "nul", *(f"{p}{n}" for p in ("com", "lpt") for n in range(1, 10))}
PROVIDERS = ("openai", "anthropic")
LOCAL_BACKENDS = ("hf", "vllm", "baseline")
COUNTS = {"hit_rate": ("green", "orange", "red"), "parse_failure_rate": ("parse_failures", "failed")}
PARSE = "first number after dropping '$' and ',' (the course's parse; none = a guess of 0)"


@dataclass
class Exported:
    """What one row becomes: its folder under data/, its UUID, the aggregate log and the item lines."""

    folder: PurePosixPath
    file_id: str
    aggregate: dict
    samples: list[str]


def _safe(text: str) -> str:
    """A portable path component (the validator's rules): letters, digits, '.', '_' and '-'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip(".-") or "unnamed"
    return cleaned if cleaned.lower().split(".")[0] not in RESERVED else f"x-{cleaned}"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _strings(mapping: dict) -> dict:
    """EEE's additional_details hold strings only; None values are left out."""
    return {str(k): _text(v) for k, v in mapping.items() if v is not None and v != ""}


def _dig(obj, *keys) -> dict:
    """obj[k1][k2]... when each is a mapping, else {}: a hand-edited manifest never raises here."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, dict) else {}


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _epoch(stamp) -> str | None:
    """An ISO time from the manifest as Unix seconds (EEE's timestamps), or None."""
    try:
        return str(int(dt.datetime.fromisoformat(stamp).timestamp())) if isinstance(stamp, str) else None
    except (ValueError, OverflowError, OSError):
        return None


def file_uuid(key: str) -> str:
    """A UUID4-shaped id derived from `key` (a run id): the same run always gets the same file names."""
    return str(uuid.UUID(bytes=hashlib.sha256(f"pricebench-eee:{key}".encode()).digest()[:16], version=4))


def model_id(model: str, options: dict) -> str:
    """An id in the hub's developer/name form: a checkpoint as named, a provider's model under the
    provider, anything else (recorded runs, baselines, local files) under pricebench."""
    from harness.predictors.hf.testmodels import UPSTREAM

    backend, _, target = model.partition(":")
    if target in UPSTREAM:
        return UPSTREAM[target]
    if HF_REPO.fullmatch(target) and all(_safe(p) == p for p in target.split("/")):
        return target
    if backend in PROVIDERS and not options.get("base_url"):
        return f"{backend}/{_safe(target)}"
    return f"pricebench/{_safe(backend)}-{_safe(target.rstrip('/').rsplit('/', 1)[-1])}"


def _model_info(entry, mid: str, backend: str, options: dict, versions: dict) -> dict:
    served = backend in PROVIDERS and options.get("base_url")
    deployment = ("externally_managed" if backend in PROVIDERS and not served else
                  "self_deployed" if backend in LOCAL_BACKENDS else "unknown")
    availability = {"hf": "open_weights", "vllm": "open_weights", "baseline": "open_weights"}.get(
        backend, "closed_weights" if backend in PROVIDERS and not served else "unknown")
    info = {"name": entry.label, "id": mid, "developer": mid.split("/")[0],
            "additional_details": {"deployment_type": deployment, "model_availability": availability,
                                   **_strings({"pricebench_model": entry.model, "kind": entry.kind,
                                               "provenance": entry.provenance, "run_id": entry.run_id,
                                               "quantization": entry.quant, "base_url": options.get("base_url")})}}
    engine = {"hf": "transformers", "vllm": "vllm"}.get(backend)
    if engine:
        version = {"version": _text(versions[engine])} if engine in versions else {}
        info["inference_engine"] = {"name": engine, **version}
    if backend in PROVIDERS:
        info["inference_platform"] = "openai-compatible server" if served else backend
    return info


def _effective_options(backend: str, given: dict) -> dict:
    """The options that define the run, defaults filled in from the backend's declaration."""
    from harness.errors import InputError
    from harness.predictors import predictor_class

    try:
        cls = predictor_class(backend)
        if cls is None:
            return dict(given)
        parsed = cls.Options.parse(given, backend=backend).model_dump()
    except InputError:
        return dict(given)
    skip = cls.Options.runtime_names()
    return {k: v for k, v in parsed.items() if k not in skip}


def _generation(entry, backend: str, given: dict, reads_prompt: bool, templates: dict) -> dict:
    """Decoding settings (defaults filled in), the prompt template, the command that reproduces the run."""
    options = _effective_options(backend, given)
    args: dict = {}
    tokens = options.get("max_new_tokens", options.get("max_tokens"))
    if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 1:
        args["max_tokens"] = tokens
    if _finite(options.get("temperature")) is not None:
        args["temperature"] = float(options["temperature"])
    style = entry.prompt or "base"
    if reads_prompt and style in templates:
        args["prompt_template"] = _text(templates[style])
    command = ["pricebench", "run", "--task", entry.task, "--model", entry.model]
    if entry.quant != "none":
        command += ["--quant", entry.quant]
    if reads_prompt:
        command += ["--prompt", style]
    command += [x for k, v in sorted(given.items()) for x in ("-o", f"{k}={_text(v)}")]
    args["execution_command"] = " ".join(command)
    predictor = _dig(entry.manifest.identity, "predictor")       # what the backend hashed: dtype, decoding...
    scalars = {k: v for k, v in predictor.items() if isinstance(v, (str, int, float, bool))}
    details = _strings({"prompt_style": style if reads_prompt else "none (the predictor reads the item, not a "
                        "prompt)", "quantization": entry.quant, **given, **scalars})
    return {"generation_args": args, "additional_details": details}


def _source_data(entry, task) -> dict:
    task_id = entry.manifest.task_identity
    where = entry.manifest.data_source
    details = _strings({"task": entry.task, "eval_slice": task_id.get("eval_slice"), "data_hash": task_id.get(
        "eval_hash"), "data_source": None if where is None else "hub" if where == "hub" else "offline copy"})
    hub = _dig(task.spec, "source", "hub") if task is not None else {}
    if hub.get("dataset"):
        return {"dataset_name": entry.task, "source_type": "hf_dataset", "hf_repo": hub["dataset"],
                "hf_split": hub.get("test_split", "test"), "additional_details": details}
    return {"dataset_name": entry.task, "source_type": "other", "additional_details": details}


def _results(entry, errors: list[float], collection: str, source: dict, generation: dict, when: str | None) -> list:
    m, man = entry.metrics, entry.manifest
    n = int(m.get("n") or len(errors))
    bootstrap = man.bootstrap or {}
    results = []
    for metric in METRICS:
        score = _finite(m.get(metric.key))
        if score is None:
            continue
        low, high = RANGES.get(metric.key, RANGES.get(metric.format, (0.0, "Infinity")))
        config = {"evaluation_description": metric.description, "metric_id": f"pricebench.{metric.key}",
                  "metric_name": metric.label, "lower_is_better": metric.lower_is_better,
                  "score_type": "continuous", "min_score": low, "max_score": high}
        if metric.unit:
            config["metric_unit"] = UNITS.get(metric.unit, metric.unit)
        uncertainty: dict = {"num_samples": n}
        ci = (_finite(m.get("mae_ci_low")), _finite(m.get("mae_ci_high")))
        if metric.key == "mae" and None not in ci:
            uncertainty["confidence_interval"] = {"lower": ci[0], "upper": ci[1], "confidence_level": 0.95,
                                                  "method": f"percentile bootstrap, seed {bootstrap.get('seed', 0)}"}
            if isinstance(bootstrap.get("samples"), int):
                uncertainty["num_bootstrap_samples"] = bootstrap["samples"]
        if metric.key == "mae" and len(errors) > 1:
            uncertainty["standard_deviation"] = statistics.stdev(errors)
        counts = _strings({k: m.get(k) for k in COUNTS.get(metric.key, ())})
        result = {"evaluation_result_id": metric.key, "evaluation_name": collection, "source_data": source,
                  "metric_config": config,
                  "score_details": {"score": score, "uncertainty": uncertainty, **({"details": counts} if counts
                                                                                  else {})},
                  "generation_config": generation}
        if when:
            result["evaluation_timestamp"] = when
        results.append(result)
    return results


def _sample(record: dict, inputs: tuple[str, str | None, bool], ids: dict, reads_prompt: bool) -> dict:
    raw_input, formatted, from_task = inputs
    reference = repr(float(record["truth"]))
    reply = record.get("raw")
    usage = record.get("usage") if isinstance(record.get("usage"), dict) else {}
    tokens = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    latency = _finite(record.get("latency_s"))
    row = {"schema_version": SCHEMA_VERSION, **ids, "sample_id": record["id"],
           "sample_hash": hashlib.sha256(json.dumps({"raw": raw_input, "reference": [reference]},
                                                    sort_keys=True).encode()).hexdigest(),
           "interaction_type": "single_turn",
           "input": {"raw": raw_input, "formatted": formatted, "reference": [reference]},
           "output": {"raw": [reply if isinstance(reply, str) else ""]},
           "answer_attribution": [{"turn_idx": 0, "source": "output.raw",
                                   "extracted_value": repr(float(record["guess"])) if record["parsed"] else "",
                                   "extraction_method": PARSE if reads_prompt else "the predictor's own number",
                                   "is_terminal": True}],
           "evaluation": {"score": float(record["error"]), "is_correct": record["colour"] == "green"},
           "error": record.get("failure") if isinstance(record.get("failure"), str) else None,
           "metadata": _strings({"guess": repr(float(record["guess"])), "truth": reference,
                                 "colour": record["colour"], "parsed": str(record["parsed"]).lower(),
                                 "squared_log_error": repr(float(record["sle"])), "title": record.get("title"),
                                 "prompt_hash": record.get("prompt_hash"),
                                 "input_is": None if from_task else "the item's title: its text was not available"})}
    if all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens):
        row["token_usage"] = {"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)}
    if latency is not None and latency >= 0:
        row["performance"] = {"latency_ms": latency * 1000.0}
    return row


def _versions(man: RunManifest) -> dict:
    """The library versions the run recorded (a published row: this pricebench's own)."""
    versions = dict(man.versions or {})
    if "pricebench" not in versions:
        versions["pricebench"] = pricebench_version("unknown")
    return versions


def export_row(entry, records: list[dict] | None, inputs: dict, *, task, reads_prompt: bool,
               exported_at: int) -> Exported:
    """The EEE records of one row (`inputs`: item id -> (input text, formatted prompt or None, from task))."""
    backend = entry.model.partition(":")[0]
    man = entry.manifest
    given = _dig(man.model_identity, "options")              # the options that define the run
    mid = model_id(entry.model, given)
    collection = _safe(f"pricebench_{entry.task}")
    folder = PurePosixPath("data", collection, *mid.split("/"))
    file_id = file_uuid(entry.run_id or f"published:{entry.task}:{entry.model}")
    evaluation_id = f"{collection}/{mid}/{entry.run_id or 'published'}"
    templates = _dig(man.task_identity, "prompts") or (_dig(task.spec, "prompts") if task else {})
    when = _epoch(man.updated)
    ids = {"evaluation_id": evaluation_id, "model_id": mid, "evaluation_name": collection,
           "evaluation_result_id": "mae"}
    samples = [json.dumps(_sample(r, inputs.get(r["id"], (str(r.get("title") or r["id"]), None, False)), ids,
                                  reads_prompt), ensure_ascii=False, allow_nan=False) for r in records or []]
    published = entry.provenance == "published"
    errors = [float(r["error"]) for r in records or []]
    versions = _versions(man)
    library = {k: v for k, v in versions.items() if k != "pricebench"}
    aggregate = {
        "schema_version": SCHEMA_VERSION, "evaluation_id": evaluation_id, "retrieved_timestamp": str(exported_at),
        "source_metadata": {
            "source_name": "pricebench", "source_type": "documentation" if published else "evaluation_run",
            "source_organization_name": "pricebench",
            "evaluator_relationship": "first_party" if backend == "baseline" else
            "other" if entry.kind == "human" else "third_party",
            "additional_details": _strings({"provenance": entry.provenance, "source": man.source or
                                            man.run_info.get("source"), "task": entry.task,
                                            "data_hash": man.task_identity.get("eval_hash"),
                                            "run_id": entry.run_id, "label": entry.label})},
        "eval_library": {"name": "pricebench", "version": _text(versions["pricebench"]),
                         "additional_details": _strings({**library, "scoring_version":
                                                       man.scoring_version or SCORING_VERSION})},
        "model_info": _model_info(entry, mid, backend, given, versions),
        "evaluation_results": _results(entry, errors, collection, _source_data(entry, task),
                                       _generation(entry, backend, given, reads_prompt, templates), when),
    }
    if when:
        aggregate["evaluation_timestamp"] = when
    if samples:
        text = "".join(line + "\n" for line in samples)
        aggregate["detailed_evaluation_results"] = {
            "format": "jsonl", "file_path": str(folder / f"{file_id}_samples.jsonl"), "hash_algorithm": "sha256",
            "checksum": hashlib.sha256(text.encode()).hexdigest(), "total_rows": len(samples)}
    return Exported(folder, file_id, aggregate, samples)
