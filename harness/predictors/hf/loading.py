"""Load a transformers causal LM the way hf: runs it: dtype, bitsandbytes 8-bit / 4-bit nf4 (the
course's settings), an optional PEFT adapter, and fp32 linear layers on oneDNN on the CPU."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from harness.predictors.hf.onednn_linear import route_linear_to_onednn


def quantization_config(quant: str, compute_dtype):
    """bitsandbytes settings for --quant (4-bit = nf4 + double quantization + a compute dtype)."""
    if quant == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_model(source: str, *, revision, trust_remote_code: bool, dtype, quant: str, compute_dtype, device: str,
               adapter, onednn: bool):
    """(model in eval mode, number of linear layers routed to oneDNN)."""
    from transformers import AutoModelForCausalLM

    # bitsandbytes 8-bit on CPU warns once per matmul; the message says nothing new.
    warnings.filterwarnings("ignore", message=".*(MatMul8bitLt|inputs will be cast).*")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code, "dtype": dtype}
    config = quantization_config(quant, compute_dtype)
    if config is not None:
        kwargs["quantization_config"] = config
        kwargs["device_map"] = {"": device if device != "cuda" else 0}
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if config is None:
        model.to(device)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(Path(adapter).expanduser()))
    model.eval()
    # Not under bitsandbytes: there oneDNN's lm_head made two runs of one spec disagree (4 of 32
    # replies, Gemma 3 8-bit, 2 threads), while PyTorch's kernel repeated exactly (docs/runs.md).
    routed = route_linear_to_onednn(model) if onednn and device == "cpu" and quant == "none" else 0
    return model, routed
