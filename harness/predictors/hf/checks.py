"""What hf: checks before trusting a shortcut with its replies: that batching (left padding) and
reusing a shared prompt prefix give exactly the replies of one prompt at a time, in full. Each
check falls back to the plain way when it fails, and says so in the run's info."""
from __future__ import annotations

import warnings


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
    alone = [predictor._generate([text], style)[0].raw for text in picks]
    together = [reply.raw for reply in predictor._generate(picks, style)]
    predictor._probe = (style, picks, together)       # check_prefix reuses these plain replies
    predictor._info.update(generate_s=0.0, items=0, prompt_tokens=0, completion_tokens=0)   # probes are not the run
    if alone == together:
        return f"checked at load ({len(picks)} prompts alone vs one padded batch: identical)"
    predictor.batch_size = 1
    warnings.warn("replies changed with the batch on this machine: generating one prompt at a time")
    return "check failed at load: batching off (batch_size 1)"


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
