"""Open models through transformers: `hf:<checkpoint | folder | file.gguf | test-model alias>`.

The course's central experiment (the same model as base vs instruct, at 8-bit vs 4-bit,
before and after fine-tuning) for any model a user names:
- greedy, a few new tokens, batched with left padding; requests sorted by length so a
  batch carries little padding (why `predict` is overridden);
- quant none | 8bit | 4bit through BitsAndBytesConfig (4-bit = nf4 + double quantization +
  a compute dtype, as in the course);
- a GGUF file is dequantized once into a cached safetensors folder (bitsandbytes refuses
  to quantize a model loaded with `gguf_file`);
- `adapter=<path>`: a PEFT adapter on top (one with a regression head, `regression.json`, makes
  the regressor of hf/regression.py); `decoding=topk-weighted`: the course's decoding
  for fine-tuned models (probability-weighted mean of the top-k next tokens that are numbers);
  `decoding=median|mean`: of `samples` seeded samples (harness/predictors/numeric.py);
  `decoding=expected`: the expected number under the model's token probabilities (hf/expected.py);
- prompt style: "chat" (the tokenizer's chat template, continuing "Price is $") if the
  tokenizer has a chat template, else "base" (the course's completion prompt).

Options (`-o key=value`, declared in `HFPredictor.Options`): dtype (auto|fast|float32|bfloat16|float16;
fast = the device's fastest float type, see harness/predictors/hf/hardware.py),
compute_dtype (4-bit), max_new_tokens (6), decoding (greedy|topk-weighted|median|mean|expected), top_k (3),
samples (8), temperature (1.0), seed (0) (median|mean only), beam (16, expected only), adapter,
revision, trust_remote_code (false); speed only: batch_size (8), device (auto|cpu|cuda|cuda:N|mps),
linear_kernel (auto|aten: fp32 linear layers on the CPU go through oneDNN unless aten; see
harness/predictors/hf/onednn_linear.py), max_batch_tokens (3072: long prompts in smaller batches where
replies do not depend on the batch), prefix_cache (auto|off: the prefix every prompt shares,
e.g. fixed in-context shots, is computed once; see harness/predictors/hf/prefix_cache.py), progress.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Literal

from harness.errors import InputError
from harness.kinds import known_kind
from harness.predictors.hf.checks import check_batch_invariance, check_prefix
from harness.fingerprint import weights_fingerprint
from harness.predictors.hf.decoding import decode_alone, resolve_target, topk_weighted
from harness.predictors.hf.expected import DEFAULT_BEAM
from harness.predictors.hf.hardware import fast_dtype_name
from harness.predictors.hf.loading import load_model
from harness.predictors.hf.onednn_linear import KERNELS
from harness.predictors.hf.prefix_cache import SharedPrefix
from harness.predictors.base import ModelSpec, Predictor, Reply
from harness.predictors.numeric import (DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_TEMPERATURE, SAMPLE_OPTIONS,
                                        SAMPLED, refuse_stray_options)
from harness.predictors.options import option, runtime
from harness.prompts import Request
from harness.versions import library_versions

DEFAULT_MAX_NEW_TOKENS = 6
# Measured on 2 cores (docs/open-models.md, "Speed"): fp32 prefill is fastest at 1,500-5,000 padded
# tokens a batch (zero-shot: 16 prompts of ~200; 5 nearest shots: 1-3 prompts of ~1,200).
DEFAULT_BATCH_TOKENS = 3072
DECODINGS = ("greedy", "topk-weighted", *SAMPLED, "expected")
# torch's floating dtypes by name (with its aliases float, half, double); auto = bfloat16 on CUDA, else float32;
# fast = bfloat16 where the device multiplies it natively, else float16 on a GPU, float32 on other CPUs
DTypeName = Literal["auto", "fast", "float32", "bfloat16", "float16", "float64", "float", "half", "double"]
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$"


class HFPredictor(Predictor):
    """transformers causal LM, optionally quantized by bitsandbytes, with an optional PEFT adapter."""

    batch_size = 8
    generates = True                 # replies are generated text (a regression head overrides: a number)

    class Options(Predictor.Options):
        batch_size: int | None = runtime(None, ge=1, description="prompts per generate call (default 8)",
                                         identity_when="replies depend on the batch: quantized, half-precision "
                                                       "or GPU runs")
        dtype: DTypeName = option("auto", description="weights dtype; auto = bfloat16 on CUDA, else float32 (the "
                                                      "exact reference); fast = bfloat16 where the device has it "
                                                      "natively (CUDA, AMX / avx512_bf16 CPUs), else float32 on a CPU")
        compute_dtype: DTypeName = option("auto", description="4-bit compute dtype")
        max_new_tokens: int = option(DEFAULT_MAX_NEW_TOKENS, ge=1, description="greedy tokens per item")
        decoding: Literal[DECODINGS] = option("greedy", description="topk-weighted: the course's decoding "
                                                                     "for fine-tuned models; median / mean of "
                                                                     "`samples` samples; expected: from token "
                                                                     "probabilities")
        top_k: int = option(3, ge=1, description="tokens averaged by topk-weighted decoding")
        beam: int = option(DEFAULT_BEAM, ge=1, le=256, description="expected: number prefixes kept per step")
        samples: int = option(DEFAULT_SAMPLES, ge=1, le=256, description="median / mean: samples per item")
        temperature: float = option(DEFAULT_TEMPERATURE, gt=0, le=5, description="median / mean: sampling "
                                                                                 "temperature")
        seed: int = option(DEFAULT_SEED, ge=0, description="median / mean: sampling seed")
        adapter: str | None = option(None, description="a PEFT adapter folder")
        revision: str | None = option(None, description="hub revision")
        trust_remote_code: bool = option(False)
        # device and linear_kernel change only float rounding, as another BLAS build would: not hashed.
        device: str = runtime("auto", pattern=DEVICE_PATTERN, expected="auto, cpu, cuda, cuda:N, mps, xpu or xpu:N")
        linear_kernel: Literal[KERNELS] = runtime("auto", description="aten: skip the oneDNN fp32 linear layers")
        prefix_cache: Literal["auto", "off"] = runtime("auto", description="compute a prefix all prompts share once "
                                                                           "(replies checked equal on the first batch)")
        max_batch_tokens: int = runtime(DEFAULT_BATCH_TOKENS, ge=0, description=(
            "batch-invariant runs (fp32 on the CPU): at most this many padded prompt tokens per batch, so "
            "long prompts (in-context examples) go in smaller batches; 0 = batch_size alone"))

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.target:
            raise InputError("hf: needs a checkpoint, folder, .gguf file or test-model alias, e.g. "
                             "hf:smollm2-135m-instruct", field="model")
        opts = self.options
        self.decoding = opts.decoding
        refuse_stray_options("hf", spec.options, self.decoding,
                             {**dict.fromkeys(SAMPLE_OPTIONS, SAMPLED), "beam": ("expected",)})
        self.linear_kernel = opts.linear_kernel
        self.top_k = opts.top_k
        self.max_new_tokens = opts.max_new_tokens
        self.trust_remote_code = opts.trust_remote_code
        self.revision = opts.revision
        self.adapter = opts.adapter
        if self.adapter and not Path(self.adapter).expanduser().is_dir():
            raise InputError("adapter folder not found", path=self.adapter, field="adapter")
        self.source, self.gguf = resolve_target(spec.target)
        self._tokenizer = None
        self.model = None
        self._info: dict = {}
        self.vocabulary = None          # expected decoding: token texts and number masks, built once

    # --- cheap, before loading -------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.source, revision=self.revision,
                                                trust_remote_code=self.trust_remote_code)
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            self._tokenizer = tok
        return self._tokenizer

    @property
    def default_prompt(self) -> str:
        return "chat" if getattr(self.tokenizer, "chat_template", None) else "base"

    @property
    def kind(self) -> str:
        if self.adapter:
            return known_kind("open-finetuned")
        return known_kind("open-instruct") if self.default_prompt == "chat" else known_kind("open-base")

    @property
    def device(self) -> str:
        import torch

        wanted = self.options.device
        return ("cuda" if torch.cuda.is_available() else "cpu") if wanted == "auto" else wanted

    def _dtype(self, key: str = "dtype"):
        import torch

        name = getattr(self.options, key)
        if name == "auto":
            name = "bfloat16" if self.device.startswith("cuda") else "float32"
        elif name == "fast":
            name = fast_dtype_name(self.device)
        return getattr(torch, name)

    def identity(self, task) -> dict:
        local = Path(self.source).is_dir()
        weights = weights_fingerprint(self.gguf or self.source) if local else f"{self.source}@{self.revision or 'main'}"
        ident = {"weights": weights, "dtype": str(self._dtype()).replace("torch.", ""),
                 "max_new_tokens": self.max_new_tokens, "decoding": self.decoding}
        if not (self.assumes_batch_invariance or self.decodes_alone):
            ident["batch_size"] = self.batch_size   # replies depend on it: one id per batch size
        if self.decoding == "topk-weighted":
            ident["top_k"] = self.top_k
        # resolved defaults: a changed default must not keep the id
        names = SAMPLE_OPTIONS if self.decoding in SAMPLED else ("beam",) if self.decoding == "expected" else ()
        ident.update({name: getattr(self.options, name) for name in names})
        if self.spec.quant == "4bit":
            ident["compute_dtype"] = str(self._dtype("compute_dtype")).replace("torch.", "")
        if self.adapter:
            ident["adapter"] = weights_fingerprint(Path(self.adapter).expanduser())
        return ident

    @property
    def assumes_batch_invariance(self) -> bool:
        """Dense fp32 on the CPU gives the same replies at any batch size (left padding), and the
        load checks it; bitsandbytes, half precision and GPU kernels are not assumed to."""
        import torch

        return self.spec.quant == "none" and self._dtype() is torch.float32 and self.device == "cpu"

    @property
    def decodes_alone(self) -> bool:
        """median / mean / expected decode each prompt by itself: no reply depends on the batch."""
        return self.decoding in (*SAMPLED, "expected")

    def label(self) -> str:
        quant = "" if self.spec.quant == "none" else f" {self.spec.quant}"
        adapter = f" + {Path(self.adapter).name}" if self.adapter else ""
        return f"{self.spec.target}{adapter}{quant} ({self.prompt_style} prompt)"

    # --- loading ---------------------------------------------------------------------
    def prepare(self, task) -> None:
        if self.model is not None:
            return
        import torch

        t0 = time.perf_counter()
        model, routed = self.load_model()
        self.model = model
        _ = self.tokenizer
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        self._info = {"load_s": round(time.perf_counter() - t0, 3), "device": self.device,
                      "dtype": str(self._dtype()).replace("torch.", ""), "quant": self.spec.quant,
                      "source": self.source, "gguf": self.gguf, "adapter": self.adapter,
                      "model_memory_mib": round(model.get_memory_footprint() / 2**20, 1),
                      "parameters": parameter_count(model),
                      "linear_kernel": f"onednn ({routed} layers)" if routed else "aten",
                      "generate_s": 0.0, "items": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._info["batch_invariance"] = check_batch_invariance(self, task)

    def load_model(self):
        """(model in eval mode, linear layers routed to oneDNN): a causal LM (+ adapter) here."""
        return load_model(self.source, revision=self.revision, trust_remote_code=self.trust_remote_code,
                          dtype=self._dtype(), quant=self.spec.quant, device=self.device,
                          compute_dtype=self._dtype("compute_dtype"), adapter=self.adapter,
                          onednn=self.linear_kernel == "auto")

    def environment(self) -> dict:
        import torch

        env = {"device": self.device, "dtype": str(self._dtype()).replace("torch.", ""), "quant": self.spec.quant,
               "batch_size": self.batch_size, "threads": torch.get_num_threads(),
               "linear_kernel": self._info.get("linear_kernel", self.linear_kernel),
               "batch_invariance": self._info.get("batch_invariance")}
        versions = library_versions(("torch", "transformers", "bitsandbytes", "peft"))
        env.update({f"{dist}_version": version for dist, version in versions.items()})
        return env

    def reply_environment(self) -> dict:
        env = self.environment()
        keys = ["device", "torch_version", "transformers_version", "bitsandbytes_version", "peft_version"]
        if not self.assumes_batch_invariance:
            keys += ["batch_size", "threads", "linear_kernel"]
        return {k: env[k] for k in keys if k in env}

    # --- prompts ---------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """The exact text the model continues (chat: its template, continuing the assistant prefix)."""
        if request.style == "base":
            return request.prompt
        messages = list(request.messages)
        if messages[-1]["role"] == "assistant":
            return self.tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _encode(self, texts: list[str], style: str):
        # A chat template writes its own special tokens; a base prompt gets the tokenizer's (e.g. BOS).
        return self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=(style == "base"))

    # --- generation ------------------------------------------------------------------
    def predict(self, requests: list[Request]) -> Iterator[tuple[Request, Reply]]:
        """Longest first, so batches hold prompts of similar length (little padding) and an
        out-of-memory error shows on the first batch; replies come back in that order. A long
        prefix shared by every prompt (fixed shots) is computed once (`prefix_cache`)."""
        if not requests:
            return
        style = requests[0].style
        texts = {id(r): self.render(r) for r in requests}
        special = style == "base"       # as _encode tokenizes them
        ids = {key: self.tokenizer(text, add_special_tokens=special)["input_ids"] for key, text in texts.items()}
        ordered = sorted(requests, key=lambda r: -len(ids[id(r)]))
        prefix = SharedPrefix.find(self.model, list(ids.values()), self.device) \
            if self.options.prefix_cache == "auto" and self.decoding == "greedy" and self.generates else None
        if prefix is not None:
            prefix = check_prefix(self, prefix, style, [texts[id(r)] for r in ordered])
        for batch in self._batches(ordered, [len(ids[id(r)]) for r in ordered]):
            yield from zip(batch, self._generate([texts[id(r)] for r in batch], style, prefix))

    def _batches(self, ordered: list, lengths: list[int]) -> Iterator[list]:
        """Batches of `batch_size` in order; where replies do not depend on the batch (checked at load),
        also at most `max_batch_tokens` padded tokens (the longest prompt's length times the rows)."""
        budget = self.options.max_batch_tokens if self.assumes_batch_invariance and self.batch_size > 1 else 0
        start = 0
        while start < len(ordered):
            size = self.batch_size
            if budget:
                size = max(1, min(size, budget // max(lengths[start], 1)))   # longest first: row 0 is the longest
            yield ordered[start:start + size]
            start += size

    def predict_batch(self, requests: list[Request]) -> list[Reply]:
        return self._generate([self.render(r) for r in requests], requests[0].style if requests else "base")

    def _generate(self, texts: list[str], style: str, prefix: SharedPrefix | None = None,
                  count: bool = True) -> list[Reply]:
        """Greedy replies (or top-k weighted, sampled or expected prices); `prefix`: the cached prompt
        head they all share (greedy only)."""
        import torch

        if self.decodes_alone:
            return self._generate_each(texts, style, count)
        enc = self._encode(texts, style).to(self.device)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        t0 = time.perf_counter()
        with torch.inference_mode():
            if self.decoding == "topk-weighted":
                replies = topk_weighted(self.model, self.tokenizer, enc, self.top_k)
                completion = [1] * len(texts)
            else:
                reuse = {"past_key_values": prefix.cache_for(enc["attention_mask"])} if prefix else {}
                out = self.model.generate(**enc, **reuse, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id, temperature=None, top_p=None,
                                          top_k=None)
                new = out[:, enc["input_ids"].shape[1]:]
                completion = (new != self.tokenizer.pad_token_id).sum(dim=1).tolist()
                replies = [Reply(raw=text) for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return self._account(replies, prompt_tokens, completion, time.perf_counter() - t0, count=count)

    def _generate_each(self, texts: list[str], style: str, count: bool) -> list[Reply]:
        """median / mean / expected: one prompt at a time (unpadded), so a reply depends on no other prompt."""
        import torch

        singles = [self._encode([text], style).to(self.device) for text in texts]
        prompt_tokens = [enc["input_ids"].shape[1] for enc in singles]
        t0 = time.perf_counter()
        with torch.inference_mode():
            replies, completion = decode_alone(self, singles, texts)
        return self._account(replies, prompt_tokens, completion, time.perf_counter() - t0, count=count)

    def _account(self, replies: list[Reply], prompt_tokens: list, completion: list, elapsed: float,
                 count: bool = True) -> list[Reply]:
        """Each reply's usage and latency, and (unless `count` is off: a check, not the run) the run's totals
        (manifest `info`)."""
        for reply, p, c in zip(replies, prompt_tokens, completion):
            reply.usage = {"prompt_tokens": int(p), "completion_tokens": int(c)}
            reply.latency_s = round(elapsed / len(replies), 4)
        if not count:
            return replies
        info = self._info
        info["generate_s"] += elapsed
        info["items"] += len(replies)
        info["prompt_tokens"] += int(sum(prompt_tokens))
        info["completion_tokens"] += int(sum(completion))
        return replies

    # --- reporting -------------------------------------------------------------------
    def run_info(self) -> dict:
        import resource

        info = dict(self._info)
        if not info:
            return {}
        gen = info["generate_s"]
        info["generate_s"] = round(gen, 3)
        info["items_per_s"] = round(info["items"] / gen, 3) if gen else None
        info["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if self.device.startswith("cuda"):
            import torch

            info["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return info

    def close(self) -> None:
        self.model = None


def parameter_count(model) -> int:
    """The model's parameters (an adapter's included; transformers counts a 4-bit weight as its
    unpacked size), for the report's base-model selection view."""
    try:
        return int(model.num_parameters())
    except (AttributeError, TypeError):
        return int(sum(p.numel() for p in model.parameters()))
