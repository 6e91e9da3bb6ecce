"""Which float type a device multiplies fastest, so that `dtype=fast` (generation) and `precision: auto`
(training) pick half precision only where the hardware has it.

bf16 is not faster everywhere: on a CPU without avx512_bf16 / AMX oneDNN emulates it, and a bf16
`linear` ran 2-4x slower than fp32 on such a Xeon here (docs/open-models.md, "Speed"). So: CUDA ->
bf16 (fp16 on GPUs without bf16), a CPU with native bf16 -> bf16, any other CPU -> fp32.
"""
from __future__ import annotations

import functools
from pathlib import Path

NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (what oneDNN's own dispatch sees)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device: str) -> bool:
    """Does `device` multiply bf16 in hardware (not by conversion to fp32)?"""
    kind = device.split(":")[0]
    if kind == "xpu":
        return True
    if kind == "cuda":
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)
    return False


def fast_dtype_name(device: str) -> str:
    """The float type `dtype=fast` resolves to on `device`."""
    kind = device.split(":")[0]
    if native_bf16(device):
        return "bfloat16"
    if kind in ("cuda", "mps"):
        return "float16"
    return "float32"


def fast_precision(device: str) -> str:
    """A recipe's `precision: auto`: bf16 autocast where it is native, else fp32."""
    return "bf16" if native_bf16(device) else "fp32"
