# PII leakage (Lukas et al. 2023, IEEE S&P): records with PII -> a public base model -> targets fine-tuned with
# and without defenses (undefended, scrubbed, DP, DP + scrubbed) -> extraction, reconstruction and inference attacks
# on every target and on the base (the attacks' baseline), membership inference on every target -> tables,
# figures, claims (generic rules in report.smk, wired by experiments/pii_leakage/manifest.py). mini: the planted-PII world (exact truth) and a tiny GPT-2 base
# pre-trained on its public corpus. Wiring only; every step is `python -m experiments.<...>`.
import re

from experiments.pii_leakage.manifest import (BASE, OUT, PII_OUTPUTS, RES, model_dir, model_ids,
                                               reconstruction_models, record_config)

PII = config.get("pii_leakage", {})
PII_RES = RES
PII_OUT = OUT
PII_DATA = f"{PII_RES}/data"
PII_DEF = {d["id"]: d for d in PII.get("defenses", [])}
PII_BASE = PII.get("base", {})
PII_TINY_BASE = PII_BASE.get("kind") == "tiny"
PII_MODELS = model_ids(PII) if PII else []  # the base and every target
PII_REC_MODELS = reconstruction_models(PII) if PII else []

wildcard_constraints:
    pii_defense="|".join(re.escape(d) for d in PII_DEF) or "NONE",
    pii_model="|".join(re.escape(m) for m in PII_MODELS) or "NONE",
    pii_split="public|test",


def pii_model_input(model):
    if model == BASE and not PII_TINY_BASE:
        return built_model_input(PII_BASE["spec"])
    return model_dir(model)


def pii_model_spec(model):
    return PII_BASE["spec"] if model == BASE and not PII_TINY_BASE else f"dir:{model_dir(model)}"


PII_BASE_INPUT = pii_model_input(BASE) if PII else []
PII_BASE_SPEC = pii_model_spec(BASE) if PII else ""


if PII.get("data", {}).get("source") == "echr":
    rule pii_echr:
        """Paper scale: ECHR fact paragraphs from the local HF cache, split 45/10/45, PERSON spans by NER (truth)."""
        output: **{k: f"{PII_DATA}/{f}" for k, f in PII_OUTPUTS.items()}
        params:
            d=PII.get("data", {}),
            split=" ".join(map(str, PII.get("data", {}).get("split", []))),
            cap=opt(PII.get("data", {}).get("max_records")),
            seed=PII.get("seed"),
            outs=out_args,
        log: "logs/pii_leakage/echr.log"
        benchmark: "logs/benchmarks/pii_leakage/echr.tsv"
        conda: CONDA_ENV
        threads: THREADS
        resources: **GPU_RES
        shell:
            "{RUN_STEP} experiments.pii_leakage.echr --dataset {params.d[dataset]} --ner {params.d[ner]}"
            " --split {params.split} --max-records {params.cap} --seed {params.seed}"
            " --device {COMPUTE[device]} {params.outs} > {log} 2>&1"
else:
    rule pii_world:
        """The planted-PII world: records of every split, identities, one truth row per span, one text per split."""
        output: **{k: f"{PII_DATA}/{f}" for k, f in PII_OUTPUTS.items()}
        params: world=lambda wc: as_json({"seed": PII["seed"], **PII["data"]["world"]}), outs=out_args
        log: "logs/pii_leakage/world.log"
        benchmark: "logs/benchmarks/pii_leakage/world.tsv"
        conda: CONDA_ENV
        threads: 1
        resources: **CPU_RES
        shell: "{RUN_STEP} experiments.pii_leakage.world --world {params.world} {params.outs} > {log} 2>&1"


rule pii_scrub:
    """The scrubbing defense's training text (tagged spans masked) and the spans its tagger missed."""
    input: f"{PII_DATA}/records.jsonl"
    output:
        text=f"{PII_DATA}/train_scrubbed.txt",
        missed=f"{PII_DATA}/missed.csv",
    params: tagger=PII.get("scrub_tagger"), outs=out_args
    log: "logs/pii_leakage/scrub.log"
    benchmark: "logs/benchmarks/pii_leakage/scrub.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.pii_leakage.scrub --records {input} --tagger {params.tagger} {params.outs} > {log} 2>&1"


rule pii_tokenizer:
    """mini: the base model's BPE, trained on the public corpus only (a tokenizer that saw the training records
    would carry their names as merges into the base: the base then infers them above chance)."""
    input: f"{PII_DATA}/public.txt"
    output: directory(f"{PII_RES}/tokenizer")
    params: vocab=PII.get("tokenizer", {}).get("vocab_size")
    log: "logs/pii_leakage/tokenizer.log"
    benchmark: "logs/benchmarks/pii_leakage/tokenizer.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.lm.tokenizer --corpus {input} --vocab-size {params.vocab} --out {output} > {log} 2>&1"


rule pii_encode:
    input:
        corpus=f"{PII_DATA}/{{pii_split}}.txt",
        tokenizer=f"{PII_RES}/tokenizer",
    output: f"{PII_RES}/tokens/{{pii_split}}.npy"
    log: "logs/pii_leakage/encode_{pii_split}.log"
    benchmark: "logs/benchmarks/pii_leakage/encode_{pii_split}.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.data.tokens --corpus {input.corpus} --tokenizer {input.tokenizer} --out {output} > {log} 2>&1"


rule pii_base:
    """mini: the public base model, a tiny GPT-2 pre-trained on the public corpus (validation: the held-out split)."""
    input:
        tokenizer=f"{PII_RES}/tokenizer",
        train=f"{PII_RES}/tokens/public.npy",
        val=f"{PII_RES}/tokens/test.npy",
    output:
        model=directory(model_dir(BASE)),
        curve=f"{PII_OUT}/training/base.csv",
    params:
        shape=as_json(PII_BASE.get("shape")),
        train=as_json(PII_BASE.get("train")),
        seed=PII.get("train_seed"),
        ckpt=f"{PII_RES}/checkpoints/base",
    log: "logs/pii_leakage/base.log"
    benchmark: "logs/benchmarks/pii_leakage/base.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.lm.train --model-id base --arch gpt2 --shape {params.shape}"
        " --tokenizer {input.tokenizer} --train {input.train} --val {input.val} --train-config {params.train}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} --checkpoint-dir {params.ckpt}"
        " --out {output.model} --curve {output.curve} > {log} 2>&1"


rule pii_finetune:
    """One target: the base fine-tuned on the training records (or their scrubbed copy), with or without DP-SGD."""
    input:
        base=PII_BASE_INPUT,
        text=lambda wc: f"{PII_DATA}/train_scrubbed.txt" if PII_DEF[wc.pii_defense]["scrub"] else f"{PII_DATA}/train.txt",
    output:
        model=directory(f"{PII_RES}/models/{{pii_defense}}"),
        curve=f"{PII_OUT}/training/{{pii_defense}}.csv",
    params:
        base=PII_BASE_SPEC,
        train=lambda wc: as_json(record_config(PII, wc.pii_defense)),
        seed=PII.get("train_seed"),
        ckpt=lambda wc: f"{PII_RES}/checkpoints/{wc.pii_defense}",
    log: "logs/pii_leakage/finetune_{pii_defense}.log"
    benchmark: "logs/benchmarks/pii_leakage/finetune_{pii_defense}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.finetune --base {params.base} --text {input.text}"
        " --train-config {params.train} --seed {params.seed} --device {COMPUTE[device]} --threads {threads}"
        " --checkpoint-dir {params.ckpt} --out {output.model} --curve {output.curve} > {log} 2>&1"


rule pii_queries:
    """Reconstruction / inference queries: one training record per member identity, cut at its full name."""
    input:
        records=f"{PII_DATA}/records.jsonl",
        identities=f"{PII_DATA}/identities.csv",
    output: queries=f"{PII_OUT}/queries.csv"
    params:
        cap=opt(PII.get("queries", {}).get("max_per_level")),
        total=opt(PII.get("queries", {}).get("max_queries")),
        seed=PII.get("seed"),
        outs=out_args,
    log: "logs/pii_leakage/queries.log"
    benchmark: "logs/benchmarks/pii_leakage/queries.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.queries --records {input.records} --identities {input.identities}"
        " --max-per-level {params.cap} --max-queries {params.total} --seed {params.seed} {params.outs} > {log} 2>&1"


rule pii_extract:
    """Extraction samples of one model (a target or the base), from BOS, top-k; the PII tagged in them."""
    input:
        model=lambda wc: pii_model_input(wc.pii_model),
        identities=f"{PII_DATA}/identities.csv",
    output:
        samples=f"{PII_OUT}/extract/{{pii_model}}/samples.csv",
        pii=f"{PII_OUT}/extract/{{pii_model}}/pii.csv",
    params:
        spec=lambda wc: pii_model_spec(wc.pii_model),
        e=PII.get("extraction", {}),
        tagger=PII.get("tagger"),
        seed=PII.get("seed"),
        outs=out_args,
    log: "logs/pii_leakage/extract_{pii_model}.log"
    benchmark: "logs/benchmarks/pii_leakage/extract_{pii_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.extract --model {params.spec} --n-samples {params.e[n_samples]}"
        " --max-new-tokens {params.e[max_new_tokens]} --top-k {params.e[top_k]} --batch-size {params.e[batch_size]}"
        " --tagger {params.tagger} --identities {input.identities} --seed {params.seed}"
        " --device {COMPUTE[device]} --threads {threads} {params.outs} > {log} 2>&1"


rule pii_extraction:
    """Extraction scores of every defense against the truth, the base model's PII subtracted."""
    input:
        truth=f"{PII_DATA}/truth.csv",
        missed=f"{PII_DATA}/missed.csv",
        base_pii=f"{PII_OUT}/extract/base/pii.csv",
        base_samples=f"{PII_OUT}/extract/base/samples.csv",
        pii=[f"{PII_OUT}/extract/{d}/pii.csv" for d in PII_DEF],
        samples=[f"{PII_OUT}/extract/{d}/samples.csv" for d in PII_DEF],
    output:
        scores=f"{PII_OUT}/extraction_scores.csv",
        levels=f"{PII_OUT}/extraction_levels.csv",
    params:
        per=" ".join(f"--defense {d} --pii {PII_OUT}/extract/{d}/pii.csv --samples {PII_OUT}/extract/{d}/samples.csv"
                     for d in PII_DEF),
        outs=out_args,
    log: "logs/pii_leakage/extraction.log"
    benchmark: "logs/benchmarks/pii_leakage/extraction.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.extraction --truth {input.truth} --missed {input.missed}"
        " --base-pii {input.base_pii} --base-samples {input.base_samples} {params.per} {params.outs} > {log} 2>&1"


rule pii_infer:
    """Inference attack on one model: the best of C candidates inserted into the whole masked record."""
    input:
        model=lambda wc: pii_model_input(wc.pii_model),
        queries=f"{PII_OUT}/queries.csv",
        identities=f"{PII_DATA}/identities.csv",
    output: rows=f"{PII_OUT}/infer/{{pii_model}}.csv"
    params:
        spec=lambda wc: pii_model_spec(wc.pii_model),
        i=PII.get("inference", {}),
        sizes=" ".join(map(str, PII.get("inference", {}).get("sizes", []))),
        pools=" ".join(PII.get("inference", {}).get("pools", [])),
        seed=PII.get("seed"),
        outs=out_args,
    log: "logs/pii_leakage/infer_{pii_model}.log"
    benchmark: "logs/benchmarks/pii_leakage/infer_{pii_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.infer --model {params.spec} --queries {input.queries}"
        " --identities {input.identities} --sizes {params.sizes} --pools {params.pools}"
        " --batch-size {params.i[batch_size]} --seed {params.seed} --device {COMPUTE[device]} --threads {threads}"
        " {params.outs} > {log} 2>&1"


rule pii_reconstruct:
    """Reconstruction on one model: the top-1 completion baseline (TAB) and the paper's sample-then-rank attack."""
    input:
        model=lambda wc: pii_model_input(wc.pii_model),
        queries=f"{PII_OUT}/queries.csv",
        identities=f"{PII_DATA}/identities.csv",
    output: rows=f"{PII_OUT}/reconstruct/{{pii_model}}.csv"
    params:
        spec=lambda wc: pii_model_spec(wc.pii_model),
        r=PII.get("reconstruction", {}),
        tagger=PII.get("tagger"),
        seed=PII.get("seed"),
        outs=out_args,
    log: "logs/pii_leakage/reconstruct_{pii_model}.log"
    benchmark: "logs/benchmarks/pii_leakage/reconstruct_{pii_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.reconstruct --model {params.spec} --queries {input.queries}"
        " --n-samples {params.r[n_samples]} --top-k {params.r[top_k]} --max-new-tokens {params.r[max_new_tokens]}"
        " --tagger {params.tagger} --identities {input.identities} --batch-size {params.r[batch_size]}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} {params.outs} > {log} 2>&1"


rule pii_membership_base:
    """The base's per-record loss on every training / held-out record: once, for every target's membership job."""
    input:
        base=PII_BASE_INPUT,
        records=f"{PII_DATA}/records.jsonl",
    output: rows=f"{PII_RES}/membership_base_losses.csv"
    params: base=PII_BASE_SPEC, seed=PII.get("seed"), outs=out_args
    log: "logs/pii_leakage/membership_base.log"
    benchmark: "logs/benchmarks/pii_leakage/membership_base.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.membership --losses-of {params.base} --records {input.records}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} {params.outs} > {log} 2>&1"


rule pii_membership:
    """Membership inference on one target: each training / held-out record's loss under the target and the base."""
    input:
        target=f"{PII_RES}/models/{{pii_defense}}",
        base_losses=rules.pii_membership_base.output.rows,
        records=f"{PII_DATA}/records.jsonl",
    output: rows=f"{PII_OUT}/membership/{{pii_defense}}.csv"
    params: seed=PII.get("seed"), outs=out_args
    log: "logs/pii_leakage/membership_{pii_defense}.log"
    benchmark: "logs/benchmarks/pii_leakage/membership_{pii_defense}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.membership --target dir:{input.target} --base-losses {input.base_losses}"
        " --records {input.records} --seed {params.seed} --device {COMPUTE[device]} --threads {threads}"
        " {params.outs} > {log} 2>&1"


rule pii_summary:
    """One table of every defense x attack x metric (counts, value, Wilson CI, chance) and one of the defenses."""
    input:
        scores=f"{PII_OUT}/extraction_scores.csv",
        infer=[f"{PII_OUT}/infer/{m}.csv" for m in PII_MODELS],
        reconstruct=[f"{PII_OUT}/reconstruct/{m}.csv" for m in PII_REC_MODELS],
        models=[f"{PII_RES}/models/{d}" for d in PII_DEF],
        membership=[f"{PII_OUT}/membership/{d}.csv" for d in PII_DEF],
    output:
        attacks=f"{PII_OUT}/attacks.csv",
        defenses=f"{PII_OUT}/defenses.csv",
    params:
        infer=" ".join(f"--infer {m}={PII_OUT}/infer/{m}.csv" for m in PII_MODELS),
        rec=" ".join(f"--reconstruct {m}={PII_OUT}/reconstruct/{m}.csv"
                     for m in PII_REC_MODELS),
        models=" ".join(f"--model {d}={PII_RES}/models/{d}" for d in PII_DEF),
        mia=" ".join(f"--membership {d}={PII_OUT}/membership/{d}.csv" for d in PII_DEF),
        outs=out_args,
    log: "logs/pii_leakage/summary.log"
    benchmark: "logs/benchmarks/pii_leakage/summary.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.pii_leakage.summary --scores {input.scores} {params.infer} {params.rec}"
        " {params.models} {params.mia} {params.outs} > {log} 2>&1"
