# TinyStories scaling (Eldan & Li 2023): corpus -> tokenizer -> width x depth sweep -> eval -> sweep table
# -> figures + claims (generic rules in report.smk, wired by experiments/tinystories/manifest.py). Wiring only;
# every step is `python -m experiments.tinystories.<step>`.
TS = config.get("tinystories", {})
TS_RES = "resources/tinystories"
TS_OUT = "results/tinystories"
TS_MODELS = [
    f"w{w}_l{d}_s{s}" for w in TS["model"]["widths"] for d in TS["model"]["depths"] for s in TS["model"]["seeds"]
] if TS else []
TS_RELEASED = {spec.split(":", 1)[1].split("@")[0].replace("/", "--"): spec for spec in TS.get("released_models", [])}

wildcard_constraints:
    width=r"\d+",
    depth=r"\d+",
    seed=r"\d+",
    split=r"train|val",


rule ts_corpus:
    output:
        train=f"{TS_RES}/corpus/train.txt",
        val=f"{TS_RES}/corpus/val.txt",
        prompts=f"{TS_RES}/corpus/prompts.jsonl",
        cloze=f"{TS_RES}/corpus/cloze.jsonl",
        truth=f"{TS_RES}/corpus/truth.csv",
    params:
        d=TS.get("data"),
        e=TS.get("eval"),
        world=as_json(TS.get("data", {}).get("world")),
        revision=opt(TS.get("data", {}).get("hub_revision")),
        prompts_file=as_json(TS.get("data", {}).get("prompts_file")),
    log: "logs/tinystories/corpus.log"
    benchmark: "logs/benchmarks/tinystories/corpus.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.tinystories.make_corpus --source {params.d[source]} --seed {params.d[seed]}"
        " --n-train {params.d[n_train_stories]} --n-val {params.d[n_val_stories]}"
        " --n-prompts {params.e[n_prompts]} --n-cloze {params.e[n_cloze]}"
        " --world {params.world} --hub-dataset {params.d[hub_dataset]}"
        " --hub-revision {params.revision} --prompts-file {params.prompts_file}"
        " --out-dir {TS_RES}/corpus > {log} 2>&1"


rule ts_tokenizer:
    input: f"{TS_RES}/corpus/train.txt"
    output: directory(f"{TS_RES}/tokenizer")
    params:
        t=TS.get("tokenizer"),
        pretrained=opt(TS.get("tokenizer", {}).get("pretrained")),
    log: "logs/tinystories/tokenizer.log"
    benchmark: "logs/benchmarks/tinystories/tokenizer.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.lm.tokenizer --corpus {input} --kind {params.t[kind]}"
        " --vocab-size {params.t[vocab_size]} --pretrained {params.pretrained} --out {output} > {log} 2>&1"


rule ts_encode:
    input:
        corpus=f"{TS_RES}/corpus/{{split}}.txt",
        tokenizer=f"{TS_RES}/tokenizer",
    output: f"{TS_RES}/tokens/{{split}}.npy"
    log: "logs/tinystories/encode_{split}.log"
    benchmark: "logs/benchmarks/tinystories/encode_{split}.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.data.tokens --corpus {input.corpus} --tokenizer {input.tokenizer}"
        " --out {output} > {log} 2>&1"


rule ts_train:
    input:
        tokenizer=f"{TS_RES}/tokenizer",
        train=f"{TS_RES}/tokens/train.npy",
        val=f"{TS_RES}/tokens/val.npy",
    output:
        model=directory(f"{TS_RES}/models/w{{width}}_l{{depth}}_s{{seed}}"),
        curve=f"{TS_OUT}/loss_curves/w{{width}}_l{{depth}}_s{{seed}}.csv",
    params:
        m=TS.get("model"),
        shape=lambda wc: as_json({"d_model": int(wc.width), "n_layers": int(wc.depth),
                                  "n_heads": TS["model"]["n_heads"], "context": TS["model"]["context"]}),
        train=as_json(TS.get("train")),
        device=COMPUTE["device"],
        ckpt=f"{TS_RES}/checkpoints/w{{width}}_l{{depth}}_s{{seed}}",
    log: "logs/tinystories/train_w{width}_l{depth}_s{seed}.log"
    benchmark: "logs/benchmarks/tinystories/train_w{width}_l{depth}_s{seed}.tsv"
    threads: THREADS
    resources: **GPU_RES
    shell:
        "python -m experiments.lm.train --model-id w{wildcards.width}_l{wildcards.depth}_s{wildcards.seed}"
        " --arch {params.m[arch]} --shape {params.shape} --seed {wildcards.seed} --tokenizer {input.tokenizer}"
        " --train {input.train} --val {input.val} --train-config {params.train} --device {params.device}"
        " --threads {threads} --checkpoint-dir {params.ckpt} --out {output.model} --curve {output.curve} > {log} 2>&1"


# What every evaluation (sweep model, reference, released checkpoint) reads, and its common CLI tail.
TS_EVAL_DATA = dict(
    val=f"{TS_RES}/tokens/val.npy",
    prompts=f"{TS_RES}/corpus/prompts.jsonl",
    cloze=f"{TS_RES}/corpus/cloze.jsonl",
    train_corpus=f"{TS_RES}/corpus/train.txt",
)
TS_EVAL_TAIL = (
    " --val {input.val} --prompts {input.prompts} --cloze {input.cloze} --train-corpus {input.train_corpus}"
    " {params.args} --threads {threads} --out {output.metrics} --samples {output.samples} > {log} 2>&1"
)


def ts_eval_args(wildcards):
    return " ".join([
        f"--eval-config {as_json(TS['eval'])}",
        f"--judge {TS['judge']['kind']} --judge-model {opt(TS['judge']['model'])}",
        f"--scale {SCALE} --device {COMPUTE['device']} --block-size {TS['train']['block_size']}",
    ])


rule ts_eval:
    input:
        model=f"{TS_RES}/models/w{{width}}_l{{depth}}_s{{seed}}",
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/w{{width}}_l{{depth}}_s{{seed}}.csv",
        samples=f"{TS_OUT}/samples/w{{width}}_l{{depth}}_s{{seed}}.jsonl",
    params: args=ts_eval_args
    log: "logs/tinystories/eval_w{width}_l{depth}_s{seed}.log"
    benchmark: "logs/benchmarks/tinystories/eval_w{width}_l{depth}_s{seed}.tsv"
    threads: THREADS
    resources: **GPU_RES
    shell:
        "python -m experiments.tinystories.evaluate --model dir:{input.model} --seed {wildcards.seed}"
        " --model-id w{wildcards.width}_l{wildcards.depth}_s{wildcards.seed}" + TS_EVAL_TAIL


rule ts_eval_reference:
    """The generator's own held-out continuations, graded like a model: the ceiling of each exact metric."""
    input:
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/reference.csv",
        samples=f"{TS_OUT}/samples/reference.jsonl",
    params: args=ts_eval_args
    log: "logs/tinystories/eval_reference.log"
    benchmark: "logs/benchmarks/tinystories/eval_reference.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.tinystories.evaluate --model reference --model-id reference" + TS_EVAL_TAIL


rule ts_eval_released:
    input:
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/released--{{slug}}.csv",
        samples=f"{TS_OUT}/samples/released--{{slug}}.jsonl",
    params:
        args=ts_eval_args,
        spec=lambda wc: TS_RELEASED[wc.slug],
    log: "logs/tinystories/eval_released--{slug}.log"
    benchmark: "logs/benchmarks/tinystories/eval_released--{slug}.tsv"
    threads: THREADS
    resources: **GPU_RES
    shell:
        "python -m experiments.tinystories.evaluate --model {params.spec} --model-id released--{wildcards.slug}" + TS_EVAL_TAIL


rule ts_sweep:
    input:
        evals=expand(f"{TS_OUT}/eval/{{model}}.csv", model=TS_MODELS),
        released=expand(f"{TS_OUT}/eval/released--{{slug}}.csv", slug=list(TS_RELEASED)),
        reference=[f"{TS_OUT}/eval/reference.csv"] if TS.get("data", {}).get("source") == "storyworld" else [],
        curves=expand(f"{TS_OUT}/loss_curves/{{model}}.csv", model=TS_MODELS),
    output:
        sweep=f"{TS_OUT}/sweep.csv",
        fit=f"{TS_OUT}/power_law.csv",
        curves=f"{TS_OUT}/loss_curves.csv",
    params: n_boot=TS.get("eval", {}).get("bootstrap")
    log: "logs/tinystories/sweep.log"
    benchmark: "logs/benchmarks/tinystories/sweep.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.tinystories.aggregate --evals {input.evals} {input.released} {input.reference}"
        " --curves {input.curves} --bootstrap {params.n_boot}"
        " --out {output.sweep} --fit-out {output.fit} --curves-out {output.curves} > {log} 2>&1"


rule ts_samples_table:
    input: expand(f"{TS_OUT}/samples/{{model}}.jsonl", model=TS_MODELS)
    output: f"{TS_OUT}/samples.csv"
    log: "logs/tinystories/samples_table.log"
    benchmark: "logs/benchmarks/tinystories/samples_table.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.tinystories.samples_table --samples {input} --out {output} > {log} 2>&1"
