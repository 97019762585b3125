"""experiments.lm.memory: parameter counts against the hub numbers and built models, the GPU-memory estimates
against hand-computed cases, and architectures read from a cached config.json."""
import json

from experiments.lm import memory as mem
from experiments.lm.build import build_model
from experiments.lm.load import param_count


def test_param_counts_match_hub_numbers_and_built_models():
    # transformers' counts of the hub checkpoints (tied unembedding counted once)
    assert mem.KNOWN_ARCHS["gpt2"].params() == 124_439_808
    assert mem.KNOWN_ARCHS["gpt2-medium"].params() == 354_823_168
    assert mem.KNOWN_ARCHS["gpt2-large"].params() == 774_030_080
    assert mem.KNOWN_ARCHS["gpt2-xl"].params() == 1_557_611_200
    assert mem.KNOWN_ARCHS["EleutherAI/gpt-neo-125M"].params() == 125_198_592
    assert mem.KNOWN_ARCHS["roneneldan/TinyStories-33M"].params() == 68_514_048
    for family in ("gpt2", "gpt_neo"):
        model = build_model(family, vocab_size=100, d_model=64, n_layers=2, n_heads=4, context=32, eos_id=0)
        assert mem.Arch(family, 64, 2, 4, 100, 32).params() == param_count(model)


def test_llama_count_matches_transformers():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    arch = mem.arch_from_config(cfg.to_dict())
    assert arch.params() == param_count(LlamaForCausalLM(cfg))


def test_train_memory_gpt2_small_by_hand():
    """GPT-2 small, micro-batch 16 x 1024 (the LN-removal micro-batch), SDPA attention:
    states 16 P = 16 * 124,439,808 = 1,991,036,928; autocast 2 P = 248,879,616;
    activations 34 * 16 * 1024 * 768 * 12 = 5,133,828,096; scores 0; logits 10 * 16,384 * 50,257 = 8,234,106,880."""
    est = mem.train_memory(mem.KNOWN_ARCHS["gpt2"], 16, 1024)
    assert est.parts == {"weights+grads+AdamW": 1_991_036_928, "autocast copies": 248_879_616,
                         "activations": 5_133_828_096, "attention scores": 0, "logits": 8_234_106_880}
    assert est.total == 15_607_851_520


def test_train_memory_gpt_neo_counts_fp32_attention_scores():
    """GPT-Neo d64 L2 h4, vocab 100, context 32: P = 6,400 + 2,048 + 2 * 49,792 + 128 = 108,160;
    micro-batch 2 x 8: states 1,730,560, autocast 216,320, activations 34 * 16 * 64 * 2 = 69,632,
    scores 6 * 2 * 4 * 8 * 8 * 2 = 6,144, logits 10 * 16 * 100 = 16,000; 8 extra bytes per unit add
    8 * 16 * 64 * 2 = 16,384 activations."""
    arch = mem.Arch("gpt_neo", 64, 2, 4, 100, 32)
    assert arch.params() == 108_160
    est = mem.train_memory(arch, 2, 8)
    assert est.parts["attention scores"] == 6_144
    assert est.total == 1_730_560 + 216_320 + 69_632 + 6_144 + 16_000
    assert mem.train_memory(arch, 2, 8, extra_act_per_token_dim=8).parts["activations"] == 69_632 + 16_384


def test_eval_memory_takes_the_largest_phase():
    """GPT-2 small evaluation with 3 fp32 models (1,493,277,696): scoring 8 * 16 * 1024 * 50,257 = 6,587,285,504
    beats float64 DLA on one 1,024-token block (8 P + 8 * 8 * 1024 * 50257 + 16 * 50257 * 768 = 4,906,719,232);
    on 2,048 tokens at once DLA wins (995,518,464 + 6,587,285,504 + 617,558,016 = 8,200,361,984)."""
    gpt2 = mem.KNOWN_ARCHS["gpt2"]
    est = mem.eval_memory(gpt2, seq=1024, n_models=3, dla_tokens=1024)
    assert est.parts == {"weights x3": 1_493_277_696, "scoring": 6_587_285_504}
    assert est.total == 8_080_563_200
    assert mem.eval_memory(gpt2, seq=1024, n_models=3, dla_tokens=2048).parts == {
        "weights x3": 1_493_277_696, "float64 DLA": 8_200_361_984}
    gen = mem.eval_memory(gpt2, seq=32, score_batch=0, sample_batch=256, sample_len=32)
    assert gen.parts["sampling"] == 8 * 12 * 256 * 32 * 768 + 8 * 256 * 50257


def test_cached_config_json_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--someone--tiny-neo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({
        "model_type": "gpt_neo", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 100,
        "max_position_embeddings": 32}))
    arch, source = mem.model_arch("hub:someone/tiny-neo")
    assert source == "cached config.json" and arch.params() == 108_160
    assert mem.model_arch("hub:someone/unknown") == (None, "unknown")
    assert mem.model_arch("hub:gpt2") == (mem.KNOWN_ARCHS["gpt2"], "table")
    assert "size unknown" in mem.model_size_text("hub:someone/unknown")
    assert mem.describe_arch(None, "unknown") == "architecture unknown"


def test_memory_module_imports_nothing_heavy():
    """Manifests import it (through external.py) when the Snakefile loads: no torch, pandas, transformers."""
    import subprocess
    import sys
    code = ("import sys, experiments.lm.memory; "
            "print([m for m in ('torch', 'pandas', 'transformers', 'matplotlib', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
