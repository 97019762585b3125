"""Per-sample gradients of HF GPT-2 under opacus: the Conv1D sampler against gradients computed one example at a
time, and the guard that refuses a model opacus would handle through a silent fallback."""
import pytest
import torch
from torch import nn

pytest.importorskip("opacus", reason="opacus is installed by make setup (extra dp)")
from opacus.grad_sample import GradSampleModule  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

from experiments.lm.dp import conv1d_grad_sample, require_grad_samplers, unsupported_layers  # noqa: E402
from tests.helpers import tiny_gpt2 as make_tiny  # noqa: E402


def tiny_gpt2(tied: bool = False, seed: int = 0):
    return make_tiny(vocab=50, tied=tied, seed=seed, double=True)


def per_example_loss(model, ids: torch.Tensor) -> torch.Tensor:
    """Summed next-token loss per example; per-row position_ids so opacus sees the batch size at wpe."""
    pos = torch.arange(ids.shape[1]).expand_as(ids)
    logits = model(input_ids=ids, position_ids=pos).logits
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    return -lp.sum(1)


def test_conv1d_sampler_formula_on_one_layer():
    torch.manual_seed(1)
    layer = Conv1D(3, 4).double()  # nf=3 outputs, nx=4 inputs: weight (4, 3)
    x = torch.randn(5, 7, 4, dtype=torch.double)
    g = torch.randn(5, 7, 3, dtype=torch.double)
    got = conv1d_grad_sample(layer, [x], g)
    for n in range(5):
        layer.zero_grad()
        (layer(x[n:n + 1]) * g[n:n + 1]).sum().backward()
        assert torch.allclose(got[layer.weight][n], layer.weight.grad, atol=1e-12)
        assert torch.allclose(got[layer.bias][n], layer.bias.grad, atol=1e-12)


def test_gpt2_per_sample_grads_equal_one_example_at_a_time():
    model = tiny_gpt2()
    require_grad_samplers(model)
    assert GradSampleModule.GRAD_SAMPLERS[Conv1D] is conv1d_grad_sample  # ours, not opacus' functorch fallback
    ids = torch.randint(0, 50, (4, 9), generator=torch.Generator().manual_seed(2))
    gsm = GradSampleModule(model, loss_reduction="sum")  # the loss below is a sum over examples
    per_example_loss(gsm, ids).sum().backward()
    samples = {name: p.grad_sample.clone() for name, p in model.named_parameters()}
    gsm._close()
    ref = tiny_gpt2()
    conv_names = {f"{n}.weight" for n, m in ref.named_modules() if isinstance(m, Conv1D)}
    assert conv_names, "the model has Conv1D layers to check"
    for i in range(ids.shape[0]):
        ref.zero_grad()
        per_example_loss(ref, ids[i:i + 1]).sum().backward()
        for name, p in ref.named_parameters():
            assert torch.allclose(samples[name][i], p.grad, atol=1e-9), name


def test_guard_names_layers_without_a_sampler_and_shared_parameters():
    class Scale(nn.Module):  # a trainable layer type opacus has no formula for
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w

    model = nn.Sequential(nn.Linear(3, 3), Scale())
    assert unsupported_layers(model) == ["1 (Scale)"]
    with pytest.raises(TypeError, match="Scale"):
        require_grad_samplers(model)
    with pytest.raises(ValueError, match="untie"):
        require_grad_samplers(tiny_gpt2(tied=True))
    require_grad_samplers(tiny_gpt2(tied=False))  # every layer has a formula, nothing shared


@pytest.mark.parametrize("epsilon,n,batch,epochs", [(8.0, 600, 32, 4), (1.0, 2000, 64, 2)])
def test_accountant_gives_the_configured_epsilon(epsilon, n, batch, epochs):
    from experiments.lm.dp import noise_for_epsilon, spent_epsilon

    q, delta = batch / n, 1 / n
    steps = int(epochs / q)
    sigma = noise_for_epsilon(epsilon, delta, q, steps)
    spent = spent_epsilon(sigma, q, steps, delta)
    assert epsilon - 0.05 <= spent["rdp"] <= epsilon + 1e-6  # the noise chosen spends the configured epsilon
    assert spent["prv"] <= spent["rdp"] + 1e-3  # PRV is the tighter accountant
    assert spent_epsilon(sigma * 0.8, q, steps, delta)["rdp"] > epsilon  # less noise spends more: the test can fail
    with pytest.raises(ValueError):
        noise_for_epsilon(epsilon, 1.5, q, steps)
