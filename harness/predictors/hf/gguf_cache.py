"""GGUF checkpoints -> a cached, dequantized safetensors folder.

transformers loads a GGUF by dequantizing it (SmolLM2: ~20 s), and bitsandbytes refuses to
quantize a model loaded with `gguf_file`. Converting once to safetensors makes later loads
take about a second and lets 8-bit/4-bit work on GGUF models too.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from harness.cache import cache_root, file_lock


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]


def dequantized_folder(gguf_file, out_dir=None) -> Path:
    """Return a safetensors folder (model + tokenizer) equivalent to `gguf_file`, converting once."""
    gguf_file = Path(gguf_file)
    if not gguf_file.exists():
        raise FileNotFoundError(gguf_file)
    out = Path(out_dir) if out_dir else cache_root() / "dequantized" / f"{gguf_file.stem}-{_fingerprint(gguf_file)}"
    if (out / "config.json").exists():
        return out
    with file_lock(out.with_name(out.name + ".lock")):
        if (out / "config.json").exists():
            return out
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        # save_pretrained refuses models "quantized with gguf"; the weights are plain fp32 now.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, out)
    return out
