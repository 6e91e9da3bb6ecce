"""How hf: reads a price from a model: the course's top-k weighted decoding for fine-tuned models,
and where the weights come from (a test-model alias, a GGUF file, a folder, a hub name)."""
from __future__ import annotations

from pathlib import Path

from harness.errors import InputError
from harness.predictors.base import Reply


def resolve_target(target: str) -> tuple[str, str | None]:
    """(what from_pretrained loads, the GGUF it came from): alias, .gguf file, folder or hub id."""
    from harness.predictors.hf import testmodels

    if target in testmodels.ALIASES:
        return str(testmodels.model_folder(target)), str(testmodels.gguf_file(target))
    path = Path(target).expanduser()
    if target.endswith(".gguf"):
        if not path.is_file():
            raise InputError("GGUF file not found", path=path, field="model")
        from harness.predictors.hf.gguf_cache import dequantized_folder

        return str(dequantized_folder(path)), str(path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise InputError("model folder has no config.json", path=path, field="model")
        return str(path), None
    if target.startswith((".", "/", "~")):
        raise InputError("model folder not found", path=path, field="model")
    return target, None                     # a hub checkpoint name


def topk_weighted(model, tokenizer, enc, top_k: int) -> list[Reply]:
    """The course's fine-tuned decoding: of the top-k next tokens, those that read as a positive
    number, averaged with their probabilities as weights (no number among them: a guess of 0)."""
    import torch

    # generate() derives positions from the mask; a bare forward must too (left padding).
    positions = (enc["attention_mask"].cumsum(dim=1) - 1).clamp(min=0)
    logits = model(**enc, position_ids=positions).logits[:, -1, :].float()
    probs, ids = torch.softmax(logits, dim=-1).topk(top_k, dim=-1)
    replies = []
    for row_probs, row_ids in zip(probs.tolist(), ids.tolist()):
        prices, weights = [], []
        for prob, token_id in zip(row_probs, row_ids):
            try:
                value = float(tokenizer.decode([token_id]))
            except ValueError:
                continue
            if value > 0:
                prices.append(value)
                weights.append(prob)
        price = sum(p * w for p, w in zip(prices, weights)) / sum(weights) if prices else 0.0
        replies.append(Reply(raw=f"{price:.2f}", price=price))
    return replies
