"""What hf: checks before trusting a shortcut with its replies: that batching (left padding) and
reusing a shared prompt prefix give exactly the replies of one prompt at a time, in full. Each
check falls back to the plain way when it fails, and says so in the run's info.

The batching check's replies are kept in the cache (<cache>/checks/<key>.json), keyed by all
they are a function of: the model's identity (weights, adapter, dtype, decoding...), its class,
the probe prompts, the device, kernels and threads, the library versions and the CPU. The same
check asked again (the next job of a suite on the same model and prompts, a resumed run) reads
them instead of generating again."""
from __future__ import annotations

import hashlib
import json
import warnings

from harness.cache import cache_root
from harness.errors import InputError
from harness.jsonio import loads, read_capped, write_json_atomic


def check_batch_invariance(predictor, task, probes: int = 3) -> str:
    """Where invariance is assumed, check it: probe prompts of different lengths alone and as one
    padded batch must give identical replies; if not, batch one prompt at a time (invariant)."""
    if not predictor.assumes_batch_invariance:
        return (f"not assumed ({predictor.spec.quant}, {predictor._dtype()}, {predictor.device}): "
                f"batch_size is in the run id")
    if predictor.batch_size == 1:
        return "batch_size 1"
    if getattr(predictor, "decodes_alone", False):
        return f"not needed: decoding={predictor.decoding} decodes each prompt by itself"
    from harness.prompts import build_requests

    requests = build_requests(task, task.eval_items()[:16], predictor.prompt_style)
    texts = sorted((predictor.render(r) for r in requests), key=len)
    picks = list(dict.fromkeys([texts[0], texts[len(texts) // 2], texts[-1]]))[:probes]
    style = requests[0].style
    path = cache_root() / "checks" / f"{_probe_key(predictor, task, style, picks)}.json"
    kept = _read_probe(path, len(picks))
    if kept is None:
        alone = [predictor._generate([text], style)[0].raw for text in picks]
        together = [reply.raw for reply in predictor._generate(picks, style)]
        predictor._info.update(generate_s=0.0, items=0, prompt_tokens=0, completion_tokens=0)   # probes: not the run
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, {"alone": alone, "together": together})
        except OSError:
            pass                                        # a cache that cannot be written: check again next time
    else:
        alone, together = kept
    predictor._probe = (style, picks, together)       # check_prefix reuses these plain replies
    if alone == together:
        how = "" if kept is None else "; the same check's replies, kept in the cache"
        return f"checked at load ({len(picks)} prompts alone vs one padded batch: identical{how})"
    predictor.batch_size = 1
    warnings.warn("replies changed with the batch on this machine: generating one prompt at a time")
    return "check failed at load: batching off (batch_size 1)"


def _probe_key(predictor, task, style: str, picks: list[str]) -> str:
    """A hash of everything the probe's replies are a function of (see the module's docstring)."""
    import platform

    import torch

    from harness.predictors.hf.hardware import cpu_flags
    from harness.versions import library_versions

    material = {"class": type(predictor).__qualname__, "identity": predictor.identity(task), "style": style,
                "picks": picks, "device": predictor.device, "quant": predictor.spec.quant,
                "kernel": predictor._info.get("linear_kernel"), "threads": torch.get_num_threads(),
                "versions": library_versions(("torch", "transformers", "peft", "bitsandbytes", "pricebench")),
                "cpu": [platform.machine(), platform.processor(), sorted(cpu_flags())]}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _read_probe(path, count: int):
    """(alone, together) replies kept by an earlier check, or None (absent or not in the expected shape)."""
    try:
        kept = loads(read_capped(path, cap=1 << 20).decode("utf-8"))
    except (OSError, ValueError, RecursionError, InputError):
        return None
    if not isinstance(kept, dict):
        return None
    alone, together = kept.get("alone"), kept.get("together")
    if not all(isinstance(x, list) and len(x) == count and all(isinstance(r, str) for r in x) for x in (alone, together)):
        return None
    return alone, together


def check_prefix(predictor, prefix, style: str, texts: list[str]):
    """The prefix to reuse, or None: three of the run's prompts (longest, middle, shortest) as one
    padded batch must give the same replies with the cached prefix as without it. The plain
    replies are the batch-invariance probe's when its prompts share the prefix (random shots: they
    do), so the check costs three short suffixes; the run's info says how it went."""
    probe = getattr(predictor, "_probe", None)
    if probe and probe[0] == style and all(
            predictor.tokenizer(text, add_special_tokens=style == "base")["input_ids"][:prefix.length] == prefix.ids
            for text in probe[1]):
        picks, plain = probe[1], probe[2]
    else:
        picks = list(dict.fromkeys([texts[0], texts[len(texts) // 2], texts[-1]]))
        plain = [r.raw for r in predictor._generate(picks, style, count=False)]
    reused = [r.raw for r in predictor._generate(picks, style, prefix, count=False)]
    if reused == plain:
        predictor._info["prefix_cache"] = f"{prefix.length} shared prompt tokens computed once (checked: " \
                                          f"{len(picks)} prompts in one batch, identical replies with and without)"
        return prefix
    predictor._info["prefix_cache"] = "off: replies changed with the shared prefix reused"
    warnings.warn("replies changed with the shared prompt prefix reused: computing every prompt in full")
    return None
