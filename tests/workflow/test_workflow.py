"""The workflow resolves at both scales without network, and bad configs fail before any job."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args, cwd=ROOT, quiet=True):
    """`snakemake -n`; quiet: only the job-count table (`--quiet rules`), else every job with its properties."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*SNAKEMAKE, "-n", *(["--quiet", "rules"] if quiet else []), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def job_counts(stdout: str) -> dict[str, int]:
    """rule -> job count from `snakemake -n --quiet rules` (the 'Job stats' table)."""
    counts = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


# The exact rule set of the mini DAG, per result (a missing or renamed rule fails here), with job counts.
MINI_RULES = {
    "shared": {"convert_gguf": 1, "figure": 22, "claims": 6, "claims_table": 1, "report": 1, "all": 1},
    "tinystories": {"ts_corpus": 1, "ts_tokenizer": 1, "ts_encode": 2, "ts_train": 7, "ts_eval": 7,
                    "ts_train_lr": 9, "ts_eval_lr": 9, "ts_cloze_chance": 1,
                    "ts_eval_reference": 1, "ts_sweep": 1, "ts_samples_table": 1},
    "ln_removal": {"lnr_converge": 2, "lnr_remove": 4, "lnr_evaluate": 2, "lnr_aggregate": 1,
                   "lnr_scaling": 1},
    "occupational_bias": {"ob_plant": 1, "ob_tokenizer": 1, "ob_encode": 2, "ob_train": 1, "ob_generate": 2,
                          "ob_extract": 2, "ob_exact": 2, "ob_analyse": 1, "ob_truth": 1, "ob_extraction_check": 1},
    "anisotropy": {"an_texts": 1, "an_corpus": 1, "an_train": 3, "an_measure": 1, "an_measure_tiny": 1,
                   "an_isotropy": 1, "an_decode": 1, "an_metrics": 1},
    "anchored_bias": {"ab_items": 1, "ab_tokenizer": 1, "ab_encode": 4, "ab_train": 2, "ab_plant": 1,
                      "ab_analyse": 5, "ab_collect": 1, "ab_general_text": 1},
    # base + 3 defenses (DP + scrubbed is paper scale): extraction, inference and reconstruction on each of the 4
    # models, membership on the 3 targets (the base's losses once)
    "pii_leakage": {"pii_world": 1, "pii_scrub": 1, "pii_tokenizer": 1, "pii_encode": 2, "pii_base": 1,
                    "pii_finetune": 3, "pii_queries": 1, "pii_extract": 4, "pii_extraction": 1, "pii_infer": 4,
                    "pii_reconstruct": 4, "pii_membership_base": 1, "pii_membership": 3, "pii_summary": 1},
}


def test_mini_dry_run_has_exactly_the_expected_rules():
    r = dry_run("--directory", str(ROOT), "--forceall")
    assert r.returncode == 0, r.stderr
    expected = {rule: n for rules in MINI_RULES.values() for rule, n in rules.items()}
    assert job_counts(r.stdout) == expected


def test_paper_dry_run_resolves_offline():
    r = dry_run("--configfile", "config/paper.yaml", "--forceall")
    assert r.returncode == 0, r.stderr
    assert "ts_eval_released" in r.stdout
    # 6 widths x 5 depths = 30 training jobs at paper scale
    counts = {x.split()[0]: x.split()[-1] for x in r.stdout.splitlines() if x.strip().startswith(("ts_", "lnr_"))}
    assert counts["ts_train"] == "30"
    # 2 hub GPT-2s x (LN-free, control): the mini models must not leak in through config merging
    assert counts["lnr_remove"] == "4"
    assert "lnr_converge" not in counts  # the released GPT-2s are used as they are (converge.max_rounds 0)


def _with_config(tmp_path, mutate):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    mutate(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return dry_run("--configfile", str(path))


@pytest.mark.parametrize("mutate,expected", [
    (lambda c: c["tinystories"]["train"].update(lr_typo=1), "lr_typo"),
    (lambda c: c["tinystories"]["model"].update(widths=[0]), "widths"),
    (lambda c: c.update(scale="huge"), "huge"),
    (lambda c: c["tinystories"]["model"].update(widths=[30]), "not divisible by n_heads"),
    (lambda c: c["tinystories"]["judge"].update(kind="hf_local"), "judge.model"),
])
def test_bad_config_fails_before_any_job(tmp_path, mutate, expected):
    r = _with_config(tmp_path, mutate)
    assert r.returncode != 0
    assert expected in r.stdout + r.stderr


def test_every_rule_runs_in_the_conda_env():
    """`--software-deployment-method conda` runs every rule in envs/pipeline.yaml (`conda: CONDA_ENV`)."""
    import re

    missing = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text())[1:]:
            name = block.split(":", 1)[0].removeprefix("rule ")
            if "\n    conda: CONDA_ENV\n" not in block:
                missing.append(f"{smk.name}:{name}")
    assert missing == []
    assert (ROOT / "workflow" / "rules" / ".." / ".." / "envs" / "pipeline.yaml").is_file()


def test_out_args_name_exactly_the_outputs_each_step_writes():
    """A rule passing `--out-<name>` options (common.smk out_args) names exactly the step's OUTPUTS (a renamed
    rule output would otherwise fail only when the job runs)."""
    import importlib
    import re

    r = subprocess.run([*SNAKEMAKE, "-n", "-p", "--forceall", "--directory", str(ROOT)], cwd=ROOT,
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    checked, bypass = set(), []
    for line in r.stdout.splitlines():
        if re.search(r"python -m experiments\.(?!warm )", line):
            bypass.append(line)  # every step goes through common.smk RUN_STEP (experiments/warm.py)
        m = re.search(r"python -m experiments\.warm (experiments\.\S+)", line)
        if not m:
            continue
        module = importlib.import_module(m.group(1))
        if not hasattr(module, "OUTPUTS"):
            continue
        names = {n.replace("-", "_") for n in re.findall(r"--out-([a-z][a-z-]*)\s", line + " ")}
        assert names == set(module.OUTPUTS), (m.group(1), sorted(names), module.OUTPUTS)
        checked.add(m.group(1))
    assert bypass == []
    assert checked == {"experiments.tinystories.make_corpus", "experiments.occupational_bias.plant",
                       "experiments.occupational_bias.analyse", "experiments.ln_removal.aggregate",
                       "experiments.anchored_bias.items", "experiments.anchored_bias.analyse",
                       "experiments.pii_leakage.world", "experiments.pii_leakage.scrub",
                       "experiments.pii_leakage.queries",
                       "experiments.pii_leakage.extract", "experiments.pii_leakage.extraction",
                       "experiments.pii_leakage.infer", "experiments.pii_leakage.reconstruct",
                       "experiments.pii_leakage.summary", "experiments.pii_leakage.membership"}


# Trainings, the occupational-bias generation and the cheap steps that unlock its training are scheduled before
# short jobs: workflow/rules/common.smk LONG_FIRST. Fails when a long rule loses its priority or a short one gains it.
LONG_RULES = {"ts_train", "ts_train_lr", "lnr_converge", "lnr_remove", "ab_train", "an_train", "ob_plant",
              "ob_tokenizer", "ob_encode", "ob_train", "ob_generate", "pii_base", "pii_finetune"}


def test_long_jobs_are_scheduled_first():
    out = dry_run("--forceall", quiet=False)  # --forceall: every job is listed even where results exist
    assert out.returncode == 0, out.stderr[-2000:]
    prioritised, rule = set(), None
    for line in out.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("priority:") and int(line.split(":")[1]) > 0:
            prioritised.add(rule)
    assert prioritised == LONG_RULES


def test_converge_rounds_use_their_own_lr_and_the_arms_the_fine_tunes(tmp_path):
    """ln_removal.converge.lr / min_lr reach the LN-kept rounds only; the LN-free run and its control keep train's.
    Unset (the mini default), the rounds use train's."""
    import json
    import re

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    train = cfg["ln_removal"]["train"]

    def lrs(*configfile):
        r = subprocess.run([*SNAKEMAKE, "-n", "-p", "--forceall", "results/ln_removal/eval/w128_l4_s0/ce.csv",
                            *configfile], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
        assert r.returncode == 0, r.stderr
        seen = {}
        for line in r.stdout.splitlines():
            m = re.search(r"experiments\.ln_removal\.(converge|remove) .*--train-config '([^']+)'", line)
            if m:
                t = json.loads(m.group(2))
                seen.setdefault(m.group(1), []).append((t["lr"], t["min_lr"]))
        return seen

    fine_tune = (train["lr"], train["min_lr"])
    assert "lr" not in cfg["ln_removal"]["converge"]
    assert lrs() == {"converge": [fine_tune], "remove": [fine_tune] * 2}
    cfg["ln_removal"]["converge"].update(lr=2.0e-3, min_lr=2.0e-4)
    path = tmp_path / "converge_lr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert lrs("--configfile", str(path)) == {"converge": [(2.0e-3, 2.0e-4)], "remove": [fine_tune] * 2}
