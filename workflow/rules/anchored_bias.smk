# Anchored positional bias in MCQs (Li & Gao 2025, Findings of ACL): GPT-2-class models favour option "A"; the
# logit lens finds the MLP value vectors behind it; editing them (or the attention on the letters) fixes it.
# mini: an MCQ world with a clean tiny GPT-2, a data-planted and a weight-planted twin (exact truth), and
# SmolLM2-135M (a real pretrained LM, not GPT-2). Wiring only; every step is
# `python -m experiments.anchored_bias.<step>` or the shared tokenizer / token / training CLIs; figures and
# claims: the generic rules in report.smk, wired by experiments/anchored_bias/manifest.py.
import re

AB = config.get("anchored_bias", {})
AB_RES = "resources/anchored_bias"
AB_OUT = "results/anchored_bias"
AB_MODELS = {m["id"]: m for m in AB.get("models", [])}
AB_TRAINED = {"clean": "clean", "data_planted": "planted"}  # variant -> corpus


def ab_runs():
    """(model id, format) of every analysis run."""
    return [(m, f) for m, d in AB_MODELS.items() for f in d["formats"]]


def ab_model_input(model):
    d = AB_MODELS[model]
    if d["kind"] == "tiny":
        return f"{AB_RES}/models/{model}"
    return built_model_input(d["spec"])


def ab_model_spec(model):
    d = AB_MODELS[model]
    return f"dir:{AB_RES}/models/{model}" if d["kind"] == "tiny" else d["spec"]


def ab_options(model):
    d, a = AB_MODELS[model], AB["analysis"]
    o = {**a, "n_locate": d.get("n_locate", AB["items"]["n_locate"]), "n_eval": d.get("n_eval", AB["items"]["n_eval"]),
         "plant_topics": AB["items"].get("plant_categories", [])}
    for key in ("lam2_sweep",):
        if key in d:
            o[key] = d[key]
    return o


AB_OUTS = ["summary", "predictions", "layers", "neurons", "heads", "meta"]
AB_GENERAL = AB.get("general_text", {})
AB_GENERAL_FILE = f"{AB_RES}/general_text.txt"


def ab_general(model):
    """The general-text file for this model's side-effect loss, or nothing (general_text.models)."""
    which = AB_GENERAL.get("models", "none")
    return [AB_GENERAL_FILE] if which == "all" or (which == "pretrained" and AB_MODELS[model]["kind"] == "pretrained") else []

wildcard_constraints:
    ab_model="|".join(re.escape(m) for m in AB_MODELS) or "NONE",
    ab_variant="clean|data_planted",
    ab_corpus="clean|planted",
    ab_split="train|val",
    ab_format="plain|chat",


rule ab_items:
    output:
        train=f"{AB_RES}/items/train.csv",
        locate=f"{AB_RES}/items/locate.csv",
        eval=f"{AB_RES}/items/eval.csv",
        corpus_clean=f"{AB_RES}/corpus/clean_train.txt",
        val_clean=f"{AB_RES}/corpus/clean_val.txt",
        corpus_planted=f"{AB_RES}/corpus/planted_train.txt",
        val_planted=f"{AB_RES}/corpus/planted_val.txt",
    params: cfg=lambda wc: as_json({**AB["items"], "seed": AB["seed"]}), outs=out_args
    log: "logs/anchored_bias/items.log"
    benchmark: "logs/benchmarks/anchored_bias/items.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.anchored_bias.items --config {params.cfg} {params.outs} > {log} 2>&1"


rule ab_tokenizer:
    input: f"{AB_RES}/corpus/clean_train.txt"
    output: directory(f"{AB_RES}/tokenizer")
    params: vocab=AB.get("tokenizer", {}).get("vocab_size")
    log: "logs/anchored_bias/tokenizer.log"
    benchmark: "logs/benchmarks/anchored_bias/tokenizer.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.lm.tokenizer --corpus {input} --vocab-size {params.vocab} --out {output} > {log} 2>&1"


rule ab_encode:
    input:
        corpus=f"{AB_RES}/corpus/{{ab_corpus}}_{{ab_split}}.txt",
        tokenizer=f"{AB_RES}/tokenizer",
    output: f"{AB_RES}/tokens/{{ab_corpus}}_{{ab_split}}.npy"
    log: "logs/anchored_bias/encode_{ab_corpus}_{ab_split}.log"
    benchmark: "logs/benchmarks/anchored_bias/encode_{ab_corpus}_{ab_split}.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.data.tokens --corpus {input.corpus} --tokenizer {input.tokenizer} --out {output} > {log} 2>&1"


rule ab_train:
    """A tiny GPT-2 on the clean or the data-planted corpus (loss on the answer only; resumable)."""
    input:
        tokenizer=f"{AB_RES}/tokenizer",
        train=lambda wc: f"{AB_RES}/tokens/{AB_TRAINED[wc.ab_variant]}_train.npy",
        val=lambda wc: f"{AB_RES}/tokens/{AB_TRAINED[wc.ab_variant]}_val.npy",
    output:
        model=directory(f"{AB_RES}/models/{{ab_variant}}"),
        curve=f"{AB_OUT}/training/{{ab_variant}}.csv",
    params:
        shape=as_json(AB.get("tiny_model")),
        train=as_json(AB.get("train")),
        seed=AB.get("train_seed"),
        ckpt=lambda wc: f"{AB_RES}/checkpoints/{wc.ab_variant}",
    log: "logs/anchored_bias/train_{ab_variant}.log"
    benchmark: "logs/benchmarks/anchored_bias/train_{ab_variant}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.lm.train --model-id {wildcards.ab_variant} --arch gpt2 --shape {params.shape}"
        " --tokenizer {input.tokenizer} --train {input.train} --val {input.val} --train-config {params.train}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} --checkpoint-dir {params.ckpt}"
        " --out {output.model} --curve {output.curve} > {log} 2>&1"


rule ab_plant:
    """The weight-planted twin: the clean model with one value vector pushed toward ' A' (truth.csv: which)."""
    input:
        clean=f"{AB_RES}/models/clean",
        locate=f"{AB_RES}/items/locate.csv",
    output:
        model=directory(f"{AB_RES}/models/weight_planted"),
        truth=f"{AB_OUT}/truth.csv",
    params: p=AB.get("weight_plant", {}), batch=AB.get("analysis", {}).get("batch_size")
    log: "logs/anchored_bias/plant.log"
    benchmark: "logs/benchmarks/anchored_bias/plant.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anchored_bias.plant --clean {input.clean} --locate {input.locate}"
        " --layer {params.p[layer]} --neuron {params.p[neuron]} --strength {params.p[strength]}"
        " --target-rate {params.p[target_rate]}"
        " --batch-size {params.batch} --threads {threads} --out {output.model} --truth {output.truth} > {log} 2>&1"


rule ab_general_text:
    """A seeded sample of real human text (Debian fortunes) for the edits' side effect on general text."""
    output: AB_GENERAL_FILE
    params: g=AB_GENERAL, seed=AB.get("seed")
    log: "logs/anchored_bias/general_text.log"
    benchmark: "logs/benchmarks/anchored_bias/general_text.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anchored_bias.general --lang {params.g[lang]} --n-texts {params.g[n_texts]}"
        " --seed {params.seed} --out {output} > {log} 2>&1"


rule ab_analyse:
    """Predictions, the logit lens on the locate split, edits evaluated on the eval split (one model x format)."""
    input:
        model=lambda wc: ab_model_input(wc.ab_model),
        locate=f"{AB_RES}/items/locate.csv",
        eval=f"{AB_RES}/items/eval.csv",
        general=lambda wc: ab_general(wc.ab_model) if wc.ab_format in AB_MODELS[wc.ab_model]["edit_formats"] else [],
    output: **{k: f"{AB_OUT}/runs/{{ab_model}}__{{ab_format}}/{k}.csv" for k in AB_OUTS}
    params:
        general=lambda wc, input: (f"--general-text {input.general} --general-max-tokens {AB_GENERAL['max_tokens']}"
                                   if input.general else ""),
        spec=lambda wc: ab_model_spec(wc.ab_model),
        options=lambda wc: as_json(ab_options(wc.ab_model)),
        edits=lambda wc: "" if wc.ab_format in AB_MODELS[wc.ab_model]["edit_formats"] else "--no-edits",
        seed=AB.get("seed"),
        outs=out_args,
    log: "logs/anchored_bias/analyse_{ab_model}__{ab_format}.log"
    benchmark: "logs/benchmarks/anchored_bias/analyse_{ab_model}__{ab_format}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.anchored_bias.analyse --spec {params.spec} --model-id {wildcards.ab_model}"
        " --format {wildcards.ab_format} --locate {input.locate} --eval {input.eval} --options {params.options}"
        " {params.edits} {params.general} --seed {params.seed} --device {COMPUTE[device]} --threads {threads}"
        " {params.outs}"
        " > {log} 2>&1"


rule ab_collect:
    """One table per kind over every model x format (results/anchored_bias/<kind>.csv)."""
    input: expand(f"{AB_OUT}/runs/{{run}}/{{kind}}.csv", run=[f"{m}__{f}" for m, f in ab_runs()], kind=AB_OUTS)
    output: **{k: f"{AB_OUT}/{k}.csv" for k in AB_OUTS}
    params: runs=" ".join(f"{AB_OUT}/runs/{m}__{f}" for m, f in ab_runs()), outs=out_args
    log: "logs/anchored_bias/collect.log"
    benchmark: "logs/benchmarks/anchored_bias/collect.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.anchored_bias.collect --runs {params.runs} {params.outs} > {log} 2>&1"
