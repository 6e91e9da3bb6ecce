"""`decoding=median|mean`: the prompt's prefill once for all samples, against once per sample.

SmolLM2-135M-Instruct, fp32 on the CPU, amazon8's first N items (K nearest TF-IDF shots; 0:
zero-shot), 8 samples at T=1 per prompt, seeded per prompt as hf: seeds them. "per copy" is the
way before: `generate(num_return_sequences=8)` runs the prompt through the model 8 times; "once"
is hf:'s way now (`decoding.sample_prices`: the prompt's keys and values computed once and laid
out for the 8 rows). Prints wall seconds of each (alternated, twice) and how many prompts drew
the very same 8 samples both ways.

    flock /tmp/pricebench-bench.lock python benchmarks/sampled_decoding.py --items 32 --shots 0
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.predictors import ModelSpec, make_predictor  # noqa: E402
from harness.predictors.hf import decoding  # noqa: E402
from harness.prompts import build_requests  # noqa: E402
from harness.tasks import load_task  # noqa: E402

SAMPLES = 8


def per_copy(model, tokenizer, encoded, texts, max_new_tokens):
    """The way before: generate(num_return_sequences) runs the prompt through the model per sample."""
    import torch

    from harness.predictors.numeric import sampled_reply

    drawn = []
    for enc, text in zip(encoded, texts):
        torch.manual_seed(decoding.prompt_seed(0, text))
        out = model.generate(**enc, do_sample=True, num_return_sequences=SAMPLES, temperature=1.0, top_k=0,
                             top_p=1.0, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        samples = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        drawn.append(sampled_reply(samples, "median").raw)
    return drawn


def once(model, tokenizer, encoded, texts, max_new_tokens):
    """hf:'s way now: decoding.sample_prices itself."""
    replies, _ = decoding.sample_prices(model, tokenizer, encoded, texts, how="median", samples=SAMPLES,
                                        temperature=1.0, seed=0, max_new_tokens=max_new_tokens)
    return [reply.raw for reply in replies]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=f"0:{args.items}")
    if args.shots:
        task = task.with_in_context({"shots": args.shots, "shot_selector": "nearest", "retriever": "tfidf"})
    predictor = make_predictor(ModelSpec("hf:smollm2-135m-instruct", prompt="base",
                                         options={"dtype": "float32", "decoding": "median"}))
    predictor.prepare(task)
    texts = [predictor.render(r) for r in build_requests(task, task.eval_items(), "base")]
    encoded = [predictor._encode([t], "base").to(predictor.device) for t in texts]
    tokens = sum(enc["input_ids"].shape[1] for enc in encoded) / len(encoded)
    print(f"{len(texts)} prompts, {args.shots} shots, {tokens:.0f} tokens on average, {SAMPLES} samples each")
    results = {}
    with torch.inference_mode():
        for way in (per_copy, once, per_copy, once):
            t0 = time.perf_counter()
            results[way.__name__] = way(predictor.model, predictor.tokenizer, encoded, texts,
                                        predictor.options.max_new_tokens)
            print(f"{way.__name__:>8}: {time.perf_counter() - t0:7.1f} s", flush=True)
    same = sum(a == b for a, b in zip(results["per_copy"], results["once"]))
    print(f"same 8 samples both ways: {same}/{len(texts)} prompts")


if __name__ == "__main__":
    main()
