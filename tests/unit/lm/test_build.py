"""Models built here: GPT-2 with the fused tanh GELU computes what GPT-2's own gelu_new computes (float round-off
only), and saves it in its config so that a reload is the same model."""
import torch

from experiments.lm.build import GPT2_ACTIVATION, build_model


def test_fused_gelu_is_gpt2s_gelu_new(tmp_path):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=64, d_model=32, n_layers=2, n_heads=4, context=16, eos_id=0)
    assert model.config.activation_function == GPT2_ACTIVATION == "gelu_pytorch_tanh"
    model.save_pretrained(tmp_path)
    same = GPT2LMHeadModel.from_pretrained(tmp_path)
    assert same.config.activation_function == GPT2_ACTIVATION
    ref_cfg = model.config.to_dict() | {"activation_function": "gelu_new"}
    ref = GPT2LMHeadModel(type(model.config).from_dict(ref_cfg))
    ref.load_state_dict(model.state_dict())
    ids = torch.randint(0, 64, (3, 16))
    with torch.no_grad():
        a, b, c = model(ids).logits, ref(ids).logits, same(ids).logits
    assert torch.equal(a, c)
    assert (a - b).abs().max() < 1e-5
    x = torch.linspace(-6, 6, 1001)
    from transformers.activations import ACT2FN
    assert (ACT2FN["gelu_new"](x) - ACT2FN[GPT2_ACTIVATION](x)).abs().max() < 1e-6
