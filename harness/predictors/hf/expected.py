"""`decoding=expected`: the expected value of the number the model would write, from its token
probabilities (no sampling).

A beam over number prefixes, per prompt: starting after the prompt, each step scores the open
prefixes (at most `beam` of them) and
- a prefix holding a digit ends there with the probability of any token that cannot continue a
  number (a space, a letter, end of text): that number gets weight P(prefix) x P(stop);
- the `beam` most probable continuations among all prefixes (digits, a decimal point; before the
  first digit also spaces and "$") stay open, each with P(prefix) x P(token).
After `max_new_tokens` steps the open prefixes end as they are (as greedy decoding would cut
them). The price is the probability-weighted mean of the ended numbers (weights renormalized over
what the beam saw); no number ended: no price (a guess of 0). Numbers are digits with an optional
decimal point (no thousands separators). The beam drops the mass of the continuations it does not
keep, and more of it for longer numbers: a small beam leans toward short numbers (the stored
reply says how much of the probability it covered). Cost: one pass over the prompt, then
`max_new_tokens` steps of `beam` short rows on its cached keys and values.
"""
from __future__ import annotations

import json
import re

from harness.predictors.base import Reply
from harness.predictors.numeric import NO_NUMBER
from harness.scoring import parse_price

DEFAULT_BEAM = 16
# What may follow a prefix in each state (a token's decoded text, full match).
_ALLOWED = {"start": re.compile(r"\s*\$?\s*([0-9]+(\.[0-9]*)?)?"),
            "int": re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]*"),
            "frac": re.compile(r"[0-9]+")}


def state(text: str) -> str:
    """Where a number prefix stands: no digit yet, in the integer part, after the decimal point."""
    if not re.search(r"[0-9]", text):
        return "start"
    return "frac" if "." in text else "int"


def vocabulary_masks(tokenizer, size: int) -> tuple[list[str], dict]:
    """(each token id's text, {state: bool tensor over the model's vocabulary of allowed next tokens})."""
    import torch

    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False)
    texts = (texts + [""] * size)[:size]
    masks = {name: torch.tensor([bool(t) and pattern.fullmatch(t) is not None for t in texts])
             for name, pattern in _ALLOWED.items()}
    return texts, masks


def expected_price(model, enc, token_texts: list[str], masks: dict, *, beam: int, max_new_tokens: int) -> Reply:
    """One prompt's expected price (`enc`: its tokens, no padding) and the numbers it averaged. The
    prompt goes through the model once; each step runs only the open prefixes' own tokens on its cache."""
    import torch
    from transformers import DynamicCache

    ids = enc["input_ids"]
    out = model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True)
    layers = [(keys, values) for keys, values, *_ in out.past_key_values]
    probs = torch.softmax(out.logits[:, -1].float(), -1)
    open_, ended, steps = [([], "", 1.0)], {}, 0
    while open_ and steps < max_new_tokens:
        if steps:
            probs = _next_probs(model, layers, [path[0] for path in open_], ids.shape[1])
        steps += 1
        grown = []
        for (path, text, p), row in zip(open_, probs.cpu()):
            allowed = row * masks[state(text)]
            if state(text) != "start":
                _add(ended, text, p * max(0.0, 1.0 - float(allowed.sum())))
            top = allowed.topk(min(beam, len(allowed)))
            grown += [(path + [t], text + token_texts[t], p * q)
                      for q, t in zip(top.values.tolist(), top.indices.tolist()) if q > 0]
        open_ = sorted(grown, key=lambda item: -item[2])[:beam]
    for _, text, p in open_:
        if state(text) != "start":
            _add(ended, text, p)
    return _reply(ended, ids.shape[1], steps)


def _next_probs(model, layers: list, suffixes: list[list[int]], prompt_length: int):
    """Next-token probabilities after each suffix (equal lengths), from the prompt's cached keys and values."""
    import torch
    from transformers import DynamicCache

    rows, length = len(suffixes), len(suffixes[0])
    cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1).contiguous(), v.expand(rows, -1, -1, -1)
                                          .contiguous()) for k, v in layers])
    device = layers[0][0].device
    positions = torch.arange(prompt_length, prompt_length + length, device=device).expand(rows, -1)
    logits = model(input_ids=torch.tensor(suffixes, device=device), past_key_values=cache,
                   attention_mask=torch.ones(rows, prompt_length + length, dtype=torch.long, device=device),
                   position_ids=positions).logits[:, -1].float()
    return torch.softmax(logits, -1)


def _add(ended: dict, text: str, weight: float) -> None:
    value = parse_price(text)
    if value is not None:
        ended[value] = ended.get(value, 0.0) + weight


def _reply(ended: dict, prompt_tokens: int, steps: int) -> Reply:
    """raw: `expected of 7 numbers (0.93 of the probability): [[12.0, 0.41], ...]` (value, weight)."""
    total = sum(ended.values())
    price = sum(v * w for v, w in ended.items()) / total if total > 0 else NO_NUMBER
    pairs = [[value, round(weight, 6)] for value, weight in sorted(ended.items(), key=lambda vw: -vw[1])]
    raw = f"expected of {len(pairs)} numbers ({total:.3f} of the probability): {json.dumps(pairs)}"
    return Reply(raw=raw, price=price, usage={"prompt_tokens": prompt_tokens, "completion_tokens": steps})
