"""Prefix KV reuse: the tokens every prompt of a run shares (5 fixed random shots: ~1,000 tokens)
go through the model once, and each batch starts from their keys and values.

A batch is the usual left-padded one (pads, prefix, the item's own tokens), so positions, masks
and sliding windows are exactly those of a plain `generate`: only the first P index slots come
from the cache instead of a forward pass. Row b has L_b pads, so its first P slots hold L_b pads
(zeros, masked) and the prefix's first P - L_b tokens; the rest of its prefix is recomputed with
its own tokens. Keys do not depend on where a token sits in the padded row (positions come from
the attention mask), so the cached prefix fits every row. The cache keeps every layer in full (a
sliding-window layer is masked by index, as a plain forward masks it). hf: checks before the run
that replies with reuse equal a plain generate's (checks.py), and otherwise turns reuse off.
"""
from __future__ import annotations

MIN_PREFIX_TOKENS = 64        # shorter shared prefixes (a question line, a chat header) save too little


def shared_length(token_lists: list[list[int]]) -> int:
    """Length of the longest token prefix common to all lists, leaving each at least one own token."""
    if not token_lists:
        return 0
    first, n = token_lists[0], min(len(ids) for ids in token_lists) - 1
    for ids in token_lists[1:]:
        k = 0
        while k < n and ids[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


class SharedPrefix:
    """The keys and values of one token prefix (batch 1), laid out again for any left-padded batch."""

    def __init__(self, model, ids: list[int], device):
        import torch
        from transformers import DynamicCache

        self.ids, self.length = list(ids), len(ids)
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=device), past_key_values=DynamicCache(), use_cache=True)
        self.layers = [(keys, values) for keys, values, *_ in out.past_key_values]

    @classmethod
    def find(cls, model, token_lists: list[list[int]], device, min_tokens: int = MIN_PREFIX_TOKENS):
        """The shared prefix of these prompts, or None when it is too short to be worth it."""
        n = shared_length(token_lists)
        return cls(model, token_lists[0][:n], device) if n >= min_tokens else None

    def cache_for(self, attention_mask):
        """A DynamicCache holding the first `length` index slots of every row of this batch."""
        from transformers import DynamicCache

        pads = (attention_mask.cumsum(dim=1) == 0).sum(dim=1).tolist()
        layers = []
        for keys, values in self.layers:
            shape = (len(pads),) + tuple(keys.shape[1:])
            batch_keys, batch_values = keys.new_zeros(shape), values.new_zeros(shape)
            for row, pad in enumerate(pads):
                pad = min(pad, self.length)
                batch_keys[row, :, pad:] = keys[0, :, :self.length - pad]
                batch_values[row, :, pad:] = values[0, :, :self.length - pad]
            layers.append((batch_keys, batch_values))
        return DynamicCache(ddp_cache_data=layers)
