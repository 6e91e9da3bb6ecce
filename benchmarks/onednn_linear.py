"""fp32 linear layers on this CPU: PyTorch's default kernel (MKL sgemm) vs oneDNN's inner product.

The shapes are SmolLM2-135M's layers at a prefill batch (8 prompts x 200 tokens) and at a
decode step (8 tokens). Prints GFLOP/s for each kernel and their largest relative difference,
which harness/predictors/hf/onednn_linear.py relies on being summation-order noise.

    python benchmarks/onednn_linear.py [--rows 1600] [--repeats 20]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from harness.predictors.hf.onednn_linear import _onednn_forward  # noqa: E402

# (name, in_features, out_features) of SmolLM2-135M's linear layers.
LAYERS = [("q_proj / o_proj", 576, 576), ("k_proj / v_proj", 576, 192), ("gate_proj / up_proj", 576, 1536),
          ("down_proj", 1536, 576), ("lm_head", 576, 49152), ("square 2048", 2048, 2048)]


def gflops(fn, x, layer, repeats: int) -> float:
    fn(layer, x)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(layer, x)
    return 2 * x.shape[0] * layer.in_features * layer.out_features * repeats / (time.perf_counter() - t0) / 1e9


def default_forward(layer, x):
    return torch.nn.functional.linear(x, layer.weight, layer.bias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1600, help="tokens in a prefill batch")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'layer':<22}{'rows':>6}{'default GFLOP/s':>17}{'oneDNN GFLOP/s':>16}{'speed-up':>10}{'max rel diff':>14}")
    with torch.inference_mode():
        warm = torch.nn.Linear(2048, 2048, bias=False)      # wake both kernels' thread pools first
        for forward in (default_forward, _onednn_forward):
            gflops(forward, torch.randn(args.rows, 2048), warm, args.repeats)
        for name, n_in, n_out in LAYERS:
            layer = torch.nn.Linear(n_in, n_out, bias=False)
            for rows in (args.rows, 8):
                x = torch.randn(rows, n_in)
                base = gflops(default_forward, x, layer, args.repeats)
                fast = gflops(_onednn_forward, x, layer, args.repeats)
                expected = default_forward(layer, x)
                diff = float((_onednn_forward(layer, x) - expected).abs().max() / expected.abs().max())
                print(f"{name:<22}{rows:>6}{base:>17.0f}{fast:>16.0f}{fast / base:>9.2f}x{diff:>14.1e}")


if __name__ == "__main__":
    main()
