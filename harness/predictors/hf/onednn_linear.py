"""fp32 `nn.Linear` through oneDNN on the CPU: the same maths, about twice as fast where MKL is slow.

PyTorch sends an fp32 `linear` on the CPU to MKL's sgemm and uses oneDNN only for reduced
precision. On this project's AMD EPYC machines MKL's sgemm reaches 170 GFLOP/s at the shapes of
a prompt batch; oneDNN's inner product (`mkldnn::_linear_pointwise`, the op Inductor itself
emits for fp32 linear layers under dynamic shapes) reaches 340-400 (`benchmarks/onednn_linear.py`).
The two differ only in summation order (relative 1e-6), as any two BLAS builds do; a check on
load compares them and keeps the default kernel if they ever disagree by more.
"""
from __future__ import annotations

import types

# hf option `linear_kernel`: auto = oneDNN on the CPU when it agrees; aten = PyTorch's default.
KERNELS = ("auto", "aten")
# Far above fp32 summation-order noise (1e-6), far below a wrong result.
_AGREEMENT_RTOL = 1e-4


def _onednn_forward(self, x):
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


def onednn_available() -> bool:
    import torch

    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _agrees_with_default(linear) -> bool:
    """One small product through both kernels: oneDNN must give the default's answer."""
    import torch

    x = torch.randn(4, linear.in_features, dtype=linear.weight.dtype, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = torch.nn.functional.linear(x, linear.weight, linear.bias)
        try:
            got = _onednn_forward(linear, x)
        except RuntimeError:                # a oneDNN build without this primitive
            return False
    return bool(torch.allclose(got, expected, rtol=_AGREEMENT_RTOL, atol=_AGREEMENT_RTOL * float(expected.abs().max())))


def route_linear_to_onednn(model) -> int:
    """Point every plain fp32 CPU `nn.Linear` of `model` at oneDNN; return how many were routed.

    Only exact `nn.Linear`: bitsandbytes' quantized layers and PEFT's LoRA wrappers are
    subclasses or wrappers with kernels of their own (a LoRA wrapper's inner layers are plain
    and do get routed). Nothing changes when oneDNN is missing or disagrees with the default.
    """
    import torch

    layers = [m for m in model.modules()
              if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"]
    if not layers or not onednn_available() or not _agrees_with_default(layers[0]):
        return 0
    for layer in layers:
        layer.forward = types.MethodType(_onednn_forward, layer)
    return len(layers)
