"""oneDNN routing of fp32 linear layers: which layers it takes, and that it keeps their answers."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.predictors.hf.onednn_linear import onednn_available, route_linear_to_onednn  # noqa: E402

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch build has no oneDNN")


class QuantizedLinear(torch.nn.Linear):
    """Stands in for bitsandbytes' Linear8bitLt / Linear4bit: a subclass with its own kernel."""


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.SiLU(), torch.nn.Linear(96, 32, bias=False),
                               QuantizedLinear(32, 32), torch.nn.Linear(32, 8).to(torch.bfloat16))


def test_routes_plain_fp32_linear_layers_only():
    model = _model()
    assert route_linear_to_onednn(model) == 2
    plain = [m for m in model if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32]
    assert all("forward" in vars(m) for m in plain)
    assert "forward" not in vars(model[3]) and "forward" not in vars(model[4])


def test_routed_layers_give_the_default_kernels_answer():
    reference, routed = _model(), _model()
    route_linear_to_onednn(routed)
    x = torch.randn(3, 17, 64)      # a batch of sequences, as a transformer feeds them
    with torch.inference_mode():
        expected, got = reference[:4](x), routed[:4](x)
    assert got.shape == expected.shape == (3, 17, 32)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(routed[0](x), routed[0](x + 1))


def test_nothing_to_route_leaves_the_model_alone():
    model = torch.nn.Sequential(QuantizedLinear(8, 8), torch.nn.Linear(8, 8).to(torch.bfloat16))
    assert route_linear_to_onednn(model) == 0
    assert not any("forward" in vars(m) for m in model)


def test_a_kernel_that_disagrees_is_not_used(monkeypatch):
    import harness.predictors.hf.onednn_linear as onednn_linear

    real = onednn_linear._onednn_forward
    monkeypatch.setattr(onednn_linear, "_onednn_forward", lambda self, x: real(self, x) * 1.001)
    model = _model()
    assert route_linear_to_onednn(model) == 0
    assert not any("forward" in vars(m) for m in model)
