"""Models built here: GPT-2 with GPT-2's own activation (gelu_new), saved in the config so a reload is the same
model; the fused tanh GELU (not adopted, see experiments.lm.build) computes the same function up to round-off."""
import torch

from experiments.lm.build import GPT2_ACTIVATION, build_model


def test_activation_is_gpt2s_and_the_fused_one_matches_it(tmp_path):
    from transformers import GPT2LMHeadModel
    from transformers.activations import ACT2FN

    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=64, d_model=32, n_layers=2, n_heads=4, context=16, eos_id=0)
    assert model.config.activation_function == GPT2_ACTIVATION == "gelu_new"
    model.save_pretrained(tmp_path)
    same = GPT2LMHeadModel.from_pretrained(tmp_path)
    fused = GPT2LMHeadModel(type(model.config).from_dict(model.config.to_dict()
                                                         | {"activation_function": "gelu_pytorch_tanh"}))
    fused.load_state_dict(model.state_dict())
    ids = torch.randint(0, 64, (3, 16))
    with torch.no_grad():
        a, b, c = model(ids).logits, same(ids).logits, fused(ids).logits
    assert torch.equal(a, b)
    assert 0 < (a - c).abs().max() < 1e-5
    x = torch.linspace(-6, 6, 1001)
    assert (ACT2FN["gelu_new"](x) - ACT2FN["gelu_pytorch_tanh"](x)).abs().max() < 1e-6
    assert (ACT2FN["gelu_new"](x) - ACT2FN["gelu"](x)).abs().max() > 1e-4  # the erf GELU is another function
