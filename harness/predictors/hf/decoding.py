"""How hf: reads a price from a model: the course's top-k weighted decoding for fine-tuned models,
the median / mean of N seeded samples (harness/predictors/numeric.py), and where the weights come
from (a test-model alias, a GGUF file, a folder, a hub name)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import InputError
from harness.predictors.base import Reply
from harness.predictors.numeric import sampled_reply


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


def prompt_seed(seed: int, text: str) -> int:
    """The torch seed of one prompt's samples: from the run's seed and the prompt text, so a reply
    depends on neither the batch it came in nor the order of the run (resumed runs agree)."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_prices(model, tokenizer, encoded: list, texts: list[str], *, how: str, samples: int,
                  temperature: float, seed: int, max_new_tokens: int) -> tuple[list[Reply], list[int]]:
    """(one reply per prompt, completion tokens per prompt): `samples` completions of each prompt,
    drawn together as one batch of copies (no padding), seeded per prompt; plain temperature sampling
    (no top-k / top-p cut, whatever the checkpoint's generation config says). The prompt goes through
    the model once (`shared_prompt_cache`), not once per copy: its prefill is most of the cost."""
    import torch

    replies, completion = [], []
    for enc, text in zip(encoded, texts):
        ids = enc["input_ids"].repeat(samples, 1)
        cache = shared_prompt_cache(model, enc["input_ids"], samples)
        torch.manual_seed(prompt_seed(seed, text))
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache,
                             do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        new = out[:, ids.shape[1]:]
        completion.append(int((new != tokenizer.pad_token_id).sum()))
        replies.append(sampled_reply(tokenizer.batch_decode(new, skip_special_tokens=True), how))
    return replies, completion


def shared_prompt_cache(model, input_ids, copies: int):
    """The keys and values of one prompt but its last token, computed once and laid out for `copies`
    rows: generate then computes the last token and samples from there, as for a fresh batch."""
    import torch
    from transformers import DynamicCache

    with torch.inference_mode():
        out = model(input_ids=input_ids[:, :-1], past_key_values=DynamicCache(), use_cache=True)
    layers = [(keys.repeat(copies, 1, 1, 1), values.repeat(copies, 1, 1, 1))
              for keys, values, *_ in out.past_key_values]
    return DynamicCache(ddp_cache_data=layers)


def decode_alone(predictor, encoded: list, texts: list[str]) -> tuple[list[Reply], list[int]]:
    """(replies, completion tokens) of `decoding=median|mean|expected`, one prompt at a time
    (`encoded`: each text's tokens, unpadded)."""
    from harness.predictors.hf.expected import expected_price, vocabulary_masks

    model, tokenizer, opts = predictor.model, predictor.tokenizer, predictor.options
    if predictor.decoding != "expected":
        return sample_prices(model, tokenizer, encoded, texts, how=predictor.decoding, samples=opts.samples,
                             temperature=opts.temperature, seed=opts.seed, max_new_tokens=opts.max_new_tokens)
    if predictor.vocabulary is None:
        predictor.vocabulary = vocabulary_masks(tokenizer, model.get_output_embeddings().weight.shape[0])
    replies = [expected_price(model, enc, *predictor.vocabulary, beam=opts.beam,
                              max_new_tokens=opts.max_new_tokens) for enc in encoded]
    return replies, [reply.usage["completion_tokens"] for reply in replies]
