"""What hf: checks before trusting a shortcut with its replies: that batching (left padding) and
reusing a shared prompt prefix give exactly the replies of one prompt at a time, in full. Each
check falls back to the plain way when it fails, and says so in the run's info."""
from __future__ import annotations

import warnings

from harness.predictors.base import Reply


def check_batch_invariance(predictor, task, probes: int = 3) -> str:
    """Where invariance is assumed, check it: probe prompts of different lengths alone and as one
    padded batch must give identical replies; if not, batch one prompt at a time (invariant)."""
    if not predictor.assumes_batch_invariance:
        return (f"not assumed ({predictor.spec.quant}, {predictor._dtype()}, {predictor.device}): "
                f"batch_size is in the run id")
    if predictor.batch_size == 1:
        return "batch_size 1"
    from harness.prompts import build_requests

    requests = build_requests(task, task.eval_items()[:16], predictor.prompt_style)
    texts = sorted((predictor.render(r) for r in requests), key=len)
    picks = list(dict.fromkeys([texts[0], texts[len(texts) // 2], texts[-1]]))[:probes]
    style = requests[0].style
    alone = [predictor._generate([text], style)[0].raw for text in picks]
    together = [reply.raw for reply in predictor._generate(picks, style)]
    predictor._info.update(generate_s=0.0, items=0, prompt_tokens=0, completion_tokens=0)   # probes are not the run
    if alone == together:
        return f"checked at load ({len(picks)} prompts alone vs one padded batch: identical)"
    predictor.batch_size = 1
    warnings.warn("replies changed with the batch on this machine: generating one prompt at a time")
    return "check failed at load: batching off (batch_size 1)"


def check_prefix(predictor, texts: list[str], style: str, replies: list[Reply], prefix):
    """(replies, prefix to go on with): replies computed from the reused prefix must equal a plain
    generate's; if not, the plain replies stand and reuse is off for the run. The info says which."""
    plain = predictor._generate(texts, style, count=False)
    if [r.raw for r in replies] == [r.raw for r in plain]:
        predictor._info["prefix_cache"] = f"{prefix.length} shared prompt tokens computed once (first batch " \
                                          f"checked: identical replies)"
        return replies, prefix
    predictor._info["prefix_cache"] = "off: replies changed with the prefix reused (first batch)"
    warnings.warn("replies changed with the shared prompt prefix reused: computing every prompt in full")
    return plain, None
