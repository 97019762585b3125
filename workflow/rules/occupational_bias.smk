# Intersectional occupational bias (Kirk et al. 2021, "Bias Out-of-the-Box"): "The {X} works as a" completions
# -> job extraction -> diversity, logistic regressions, US labour comparison; a planted world (tiny GPT-2 trained
# on a corpus with known job-by-group rates) checks every method against exact answers. Wiring only; every step
# is `python -m experiments.occupational_bias.<step>`; figures and claims: the generic rules in report.smk,
# wired by experiments/occupational_bias/manifest.py.
import os
import re

OB = config.get("occupational_bias", {})
OB_RES = "resources/occupational_bias"
OB_OUT = "results/occupational_bias"
OB_MODELS = {m["id"]: m for m in OB.get("models", [])}
OB_PLANTED = [m for m, d in OB_MODELS.items() if d["kind"] == "planted"]
OB_SAMPLING = OB.get("sampling", {})
OB_ANALYSIS = OB.get("analysis", {})

wildcard_constraints:
    ob_model="|".join(re.escape(m) for m in OB_MODELS) or "NONE",
    ob_split="train|val",


OB_TITLES = f"--titles {OB['extraction']['titles']}" if OB.get("extraction", {}).get("titles") else ""


def ob_sampling_args(model):
    """Generation / exact-check options shared by both steps (so both see the same distribution)."""
    s, m = OB_SAMPLING, OB_MODELS[model]
    return (f"--top-k {opt(s.get('top_k'))} --top-p {opt(s.get('top_p'))} --temperature {s.get('temperature')}"
            f" --max-length {opt(s.get('max_length'))}"
            + (f" --max-new-tokens {s['max_new_tokens']}" if s.get("max_new_tokens") else "")
            + f" --prompt-prefix {shlex.quote(m['prompt_prefix'])}")


rule ob_plant:
    output:
        truth=f"{OB_RES}/planted/truth.csv",
        terms=f"{OB_RES}/planted/terms.csv",
        interactions=f"{OB_RES}/planted/interactions.csv",
        labelled=f"{OB_RES}/planted/labelled.csv",
        train=f"{OB_RES}/planted/train.txt",
        val=f"{OB_RES}/planted/val.txt",
    params: cfg=as_json(OB.get("planted")), outs=out_args
    log: "logs/occupational_bias/plant.log"
    benchmark: "logs/benchmarks/occupational_bias/plant.tsv"
    conda: CONDA_ENV
    threads: 1
    priority: LONG_FIRST
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.occupational_bias.plant --config {params.cfg} {params.outs} > {log} 2>&1"


rule ob_tokenizer:
    input: f"{OB_RES}/planted/train.txt"
    output: directory(f"{OB_RES}/planted/tokenizer")
    params: vocab=OB.get("planted_model", {}).get("vocab_size")
    log: "logs/occupational_bias/tokenizer.log"
    benchmark: "logs/benchmarks/occupational_bias/tokenizer.tsv"
    conda: CONDA_ENV
    threads: 1
    priority: LONG_FIRST
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.lm.tokenizer --corpus {input} --vocab-size {params.vocab} --out {output} > {log} 2>&1"


rule ob_encode:
    input:
        corpus=f"{OB_RES}/planted/{{ob_split}}.txt",
        tokenizer=f"{OB_RES}/planted/tokenizer",
    output: f"{OB_RES}/planted/tokens/{{ob_split}}.npy"
    log: "logs/occupational_bias/encode_{ob_split}.log"
    benchmark: "logs/benchmarks/occupational_bias/encode_{ob_split}.tsv"
    conda: CONDA_ENV
    threads: 1
    priority: LONG_FIRST
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.data.tokens --corpus {input.corpus} --tokenizer {input.tokenizer} --out {output} > {log} 2>&1"


rule ob_train:
    input:
        tokenizer=f"{OB_RES}/planted/tokenizer",
        train=f"{OB_RES}/planted/tokens/train.npy",
        val=f"{OB_RES}/planted/tokens/val.npy",
    output:
        model=directory(f"{OB_RES}/planted/model"),
        curve=f"{OB_OUT}/planted_training_curve.csv",
    params:
        shape=as_json({k: v for k, v in OB.get("planted_model", {}).items() if k != "vocab_size"}),
        train=as_json(OB.get("planted_train")),
        seed=OB.get("train_seed"),
        model_id="+".join(OB_PLANTED) or "planted",
        ckpt=f"{OB_RES}/planted/checkpoint",
    log: "logs/occupational_bias/train.log"
    benchmark: "logs/benchmarks/occupational_bias/train.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.lm.train --model-id {params.model_id} --arch gpt2 --shape {params.shape}"
        " --tokenizer {input.tokenizer} --train {input.train} --val {input.val} --train-config {params.train}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} --checkpoint-dir {params.ckpt}"
        " --out {output.model} --curve {output.curve} > {log} 2>&1"


rule ob_generate:
    """Completions of one model; finished chunks survive a killed job (`{OB_RES}/raw/<model>.parts`)."""
    input: lambda wc: built_model_input(OB_MODELS[wc.ob_model]["spec"])
    output: f"{OB_RES}/raw/{{ob_model}}.csv"
    params:
        m=lambda wc: OB_MODELS[wc.ob_model],
        base=lambda wc: opt(OB_MODELS[wc.ob_model].get("base_samples")),
        sampling=lambda wc: ob_sampling_args(wc.ob_model),
        chunk=OB_SAMPLING.get("chunk"),
        seed=OB.get("seed"),
        parts=lambda wc: f"{OB_RES}/raw/{wc.ob_model}.parts",
    log: "logs/occupational_bias/generate_{ob_model}.log"
    benchmark: "logs/benchmarks/occupational_bias/generate_{ob_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.generate --spec {params.m[spec]} --model-id {wildcards.ob_model}"
        " --identity-samples {params.m[identity_samples]} --base-samples {params.base}"
        " --name-samples {params.m[name_samples]} {params.sampling} --batch-size {params.m[batch_size]}"
        " --chunk {params.chunk} --seed {params.seed} --device {COMPUTE[device]} --threads {threads}"
        " --parts-dir {params.parts} --out {output} > {log} 2>&1"


rule ob_extract:
    input: f"{OB_RES}/raw/{{ob_model}}.csv"
    output: f"{OB_OUT}/completions/{{ob_model}}.csv"
    params:
        e=OB.get("extraction", {}),
        titles=OB_TITLES,
        url=lambda wc: f"--corenlp-url {OB['extraction']['corenlp_url']}" if OB.get("extraction", {}).get("corenlp_url") else "",
    log: "logs/occupational_bias/extract_{ob_model}.log"
    benchmark: "logs/benchmarks/occupational_bias/extract_{ob_model}.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.extract --completions {input} --kind {params.e[kind]}"
        " {params.titles} {params.url} --out {output} > {log} 2>&1"


rule ob_exact:
    """Exact leading-job probabilities from the model's logits (same filtering as sampling) vs the samples."""
    input:
        model=lambda wc: built_model_input(OB_MODELS[wc.ob_model]["spec"]),
        completions=f"{OB_OUT}/completions/{{ob_model}}.csv",
    output: f"{OB_OUT}/exact/{{ob_model}}.csv"
    params:
        m=lambda wc: OB_MODELS[wc.ob_model],
        sampling=lambda wc: ob_sampling_args(wc.ob_model),
        titles=OB_TITLES,
    log: "logs/occupational_bias/exact_{ob_model}.log"
    benchmark: "logs/benchmarks/occupational_bias/exact_{ob_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.exact --spec {params.m[spec]} --model-id {wildcards.ob_model}"
        " --completions {input.completions} {params.sampling} --min-prob {params.m[exact_min_prob]} {params.titles}"
        " --device {COMPUTE[device]} --threads {threads} --out {output} > {log} 2>&1"


rule ob_analyse:
    input: expand(f"{OB_OUT}/completions/{{m}}.csv", m=list(OB_MODELS))
    output:
        diversity=f"{OB_OUT}/diversity.csv",
        regressions=f"{OB_OUT}/regressions.csv",
        regression_summary=f"{OB_OUT}/regression_summary.csv",
        gender_tests=f"{OB_OUT}/gender_tests.csv",
        labour=f"{OB_OUT}/labour.csv",
        labour_summary=f"{OB_OUT}/labour_summary.csv",
    params: a=OB_ANALYSIS, seed=OB.get("seed"), outs=out_args
    log: "logs/occupational_bias/analyse.log"
    benchmark: "logs/benchmarks/occupational_bias/analyse.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.analyse --completions {input} {params.outs}"
        " --threshold-share {params.a[threshold_share]} --alpha {params.a[alpha]}"
        " --min-labour-mentions {params.a[min_labour_mentions]} --min-base-mentions {params.a[min_base_mentions]}"
        " --women-share {params.a[women_share]}"
        " --bootstrap {params.a[bootstrap]} --seed {params.seed} > {log} 2>&1"


rule ob_truth:
    """Planted world: every method against the exact answer (planted values and the trained LM's exact values)."""
    input:
        exact=expand(f"{OB_OUT}/exact/{{m}}.csv", m=OB_PLANTED),
        regressions=f"{OB_OUT}/regressions.csv",
        diversity=f"{OB_OUT}/diversity.csv",
        labour=f"{OB_OUT}/labour.csv",
        labour_summary=f"{OB_OUT}/labour_summary.csv",
        completions=expand(f"{OB_OUT}/completions/{{m}}.csv", m=OB_PLANTED),
        truth=f"{OB_RES}/planted/truth.csv",
        terms=f"{OB_RES}/planted/terms.csv",
        interactions=f"{OB_RES}/planted/interactions.csv",
        labelled=f"{OB_RES}/planted/labelled.csv",
    output:
        truth=f"{OB_OUT}/truth_check.csv",
        interactions=f"{OB_OUT}/truth_check_interactions.csv",
    params: models=" ".join(OB_PLANTED), a=OB_ANALYSIS
    log: "logs/occupational_bias/truth.log"
    benchmark: "logs/benchmarks/occupational_bias/truth.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.truth_check --models {params.models} --exact {input.exact}"
        " --regressions {input.regressions} --diversity {input.diversity} --labour {input.labour}"
        " --labour-summary {input.labour_summary} --completions {input.completions} --truth {input.truth}"
        " --terms {input.terms} --interactions {input.interactions} --labelled {input.labelled}"
        " --alpha {params.a[alpha]} --women-share {params.a[women_share]} --out {output.truth}"
        " --interactions-out {output.interactions} > {log} 2>&1"


rule ob_extraction_check:
    """The extractor against the developer's labels of 300 SmolLM2 completions (text it did not write)."""
    input: os.path.join(workflow.basedir, "experiments", "occupational_bias", "data", "smollm2_extraction_labels.csv")
    output: f"{OB_OUT}/extraction_check.csv"
    params:
        e=OB.get("extraction", {}),
        titles=OB_TITLES,
        url=lambda wc: f"--corenlp-url {OB['extraction']['corenlp_url']}" if OB.get("extraction", {}).get("corenlp_url") else "",
    log: "logs/occupational_bias/extraction_check.log"
    benchmark: "logs/benchmarks/occupational_bias/extraction_check.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.occupational_bias.extraction_check --labels {input} --kind {params.e[kind]}"
        " {params.titles} {params.url} --out {output} > {log} 2>&1"
