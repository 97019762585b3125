# TinyStories scaling (Eldan & Li 2023): corpus -> tokenizer -> width x depth grid + learning-rate sweep -> eval
# (+ reference, n-gram cloze chance) -> sweep table -> figures + claims (generic rules in report.smk, wired by
# experiments/tinystories/manifest.py). Wiring only; every step is `python -m experiments.<...>`.
TS = config.get("tinystories", {})
TS_RES = "resources/tinystories"
TS_OUT = "results/tinystories"


def ts_lr_tag(lr):
    return f"{lr:g}"


def ts_model_id(width, depth, seed, lr=None):
    """Grid models (the grid lr) are w{W}_l{D}_s{S}; the lr sweep's other models add _lr{LR}."""
    base = f"w{width}_l{depth}_s{seed}"
    return base if lr is None or lr == TS["train"]["lr"] else f"{base}_lr{ts_lr_tag(lr)}"


TS_GRID = [
    ts_model_id(w, d, s) for w in TS["model"]["widths"] for d in TS["model"]["depths"] for s in TS["model"]["seeds"]
    if [w, d] not in TS["model"]["exclude"]
] if TS else []
TS_LR_MODELS = [
    ts_model_id(w, d, s, lr) for w, d in TS["lr_sweep"]["shapes"] for lr in TS["lr_sweep"]["lrs"]
    for s in TS["model"]["seeds"]
] if TS else []
TS_MODELS = TS_GRID + [m for m in dict.fromkeys(TS_LR_MODELS) if m not in TS_GRID]  # every trained model, once
TS_RELEASED = {spec.split(":", 1)[1].split("@")[0].replace("/", "--"): spec for spec in TS.get("released_models", [])}
TS_STORYWORLD = TS.get("data", {}).get("source") == "storyworld"

wildcard_constraints:
    ts_width=r"\d+",
    ts_depth=r"\d+",
    ts_seed=r"\d+",
    ts_lr=r"[0-9.e+-]+",
    ts_split=r"train|val",


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
        outs=out_args,
    log: "logs/tinystories/corpus.log"
    benchmark: "logs/benchmarks/tinystories/corpus.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.make_corpus --source {params.d[source]} --seed {params.d[seed]}"
        " --n-train {params.d[n_train_stories]} --n-val {params.d[n_val_stories]}"
        " --n-prompts {params.e[n_prompts]} --n-cloze {params.e[n_cloze]}"
        " --world {params.world} --hub-dataset {params.d[hub_dataset]}"
        " --hub-revision {params.revision} --prompts-file {params.prompts_file}"
        " {params.outs} > {log} 2>&1"


rule ts_tokenizer:
    input: f"{TS_RES}/corpus/train.txt"
    output: directory(f"{TS_RES}/tokenizer")
    params:
        t=TS.get("tokenizer"),
        pretrained=opt(TS.get("tokenizer", {}).get("pretrained")),
    log: "logs/tinystories/tokenizer.log"
    benchmark: "logs/benchmarks/tinystories/tokenizer.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.lm.tokenizer --corpus {input} --kind {params.t[kind]}"
        " --vocab-size {params.t[vocab_size]} --pretrained {params.pretrained} --out {output} > {log} 2>&1"


rule ts_encode:
    input:
        corpus=f"{TS_RES}/corpus/{{ts_split}}.txt",
        tokenizer=f"{TS_RES}/tokenizer",
    output: f"{TS_RES}/tokens/{{ts_split}}.npy"
    log: "logs/tinystories/encode_{ts_split}.log"
    benchmark: "logs/benchmarks/tinystories/encode_{ts_split}.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.data.tokens --corpus {input.corpus} --tokenizer {input.tokenizer}"
        " --out {output} > {log} 2>&1"


TS_TRAIN_SHELL = (
    "{RUN_STEP} experiments.lm.train --model-id {params.model_id}"
    " --arch {params.arch} --shape {params.shape} --seed {wildcards.ts_seed} --tokenizer {input.tokenizer}"
    " --train {input.train} --val {input.val} --train-config {params.train} --device {params.device}"
    " --threads {threads} --checkpoint-dir {params.ckpt} --out {output.model} --curve {output.curve} > {log} 2>&1"
)


def ts_shape(wildcards):
    return as_json({"d_model": int(wildcards.ts_width), "n_layers": int(wildcards.ts_depth),
                    "n_heads": TS["model"]["n_heads"], "context": TS["model"]["context"]})


def ts_train_config(wildcards):
    """The grid's training options; an lr-sweep model scales lr and min_lr by the same factor."""
    train = dict(TS["train"])
    if "ts_lr" in wildcards.keys():
        factor = float(wildcards.ts_lr) / train["lr"]
        train["lr"] = float(wildcards.ts_lr)
        if train.get("min_lr") is not None:
            train["min_lr"] = train["min_lr"] * factor
    return as_json(train)


rule ts_train:
    input:
        tokenizer=f"{TS_RES}/tokenizer",
        train=f"{TS_RES}/tokens/train.npy",
        val=f"{TS_RES}/tokens/val.npy",
    output:
        model=directory(f"{TS_RES}/models/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}"),
        curve=f"{TS_OUT}/loss_curves/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}.csv",
    params:
        arch=TS.get("model", {}).get("arch"),  # only what the command uses: a grid edit retrains nothing
        model_id="w{ts_width}_l{ts_depth}_s{ts_seed}",
        shape=ts_shape,
        train=ts_train_config,
        device=COMPUTE["device"],
        ckpt=f"{TS_RES}/checkpoints/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}",
    log: "logs/tinystories/train_w{ts_width}_l{ts_depth}_s{ts_seed}.log"
    benchmark: "logs/benchmarks/tinystories/train_w{ts_width}_l{ts_depth}_s{ts_seed}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell: TS_TRAIN_SHELL


rule ts_train_lr:
    """A model of the learning-rate sweep at a peak lr other than the grid's."""
    input:
        tokenizer=f"{TS_RES}/tokenizer",
        train=f"{TS_RES}/tokens/train.npy",
        val=f"{TS_RES}/tokens/val.npy",
    output:
        model=directory(f"{TS_RES}/models/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}"),
        curve=f"{TS_OUT}/loss_curves/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}.csv",
    params:
        arch=TS.get("model", {}).get("arch"),  # only what the command uses: a grid edit retrains nothing
        model_id="w{ts_width}_l{ts_depth}_s{ts_seed}_lr{ts_lr}",
        shape=ts_shape,
        train=ts_train_config,
        device=COMPUTE["device"],
        ckpt=f"{TS_RES}/checkpoints/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}",
    log: "logs/tinystories/train_w{ts_width}_l{ts_depth}_s{ts_seed}_lr{ts_lr}.log"
    benchmark: "logs/benchmarks/tinystories/train_w{ts_width}_l{ts_depth}_s{ts_seed}_lr{ts_lr}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell: TS_TRAIN_SHELL


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
        model=f"{TS_RES}/models/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}",
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}.csv",
        samples=f"{TS_OUT}/samples/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}.jsonl",
    params: args=ts_eval_args
    log: "logs/tinystories/eval_w{ts_width}_l{ts_depth}_s{ts_seed}.log"
    benchmark: "logs/benchmarks/tinystories/eval_w{ts_width}_l{ts_depth}_s{ts_seed}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.evaluate --model dir:{input.model} --seed {wildcards.ts_seed}"
        " --lr {TS[train][lr]} --model-id w{wildcards.ts_width}_l{wildcards.ts_depth}_s{wildcards.ts_seed}" + TS_EVAL_TAIL


rule ts_eval_lr:
    """An lr-sweep model: validation loss and cloze probes only (the depth claims read nothing else)."""
    input:
        model=f"{TS_RES}/models/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}",
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}.csv",
        samples=f"{TS_OUT}/samples/w{{ts_width}}_l{{ts_depth}}_s{{ts_seed}}_lr{{ts_lr}}.jsonl",
    params: args=ts_eval_args
    log: "logs/tinystories/eval_w{ts_width}_l{ts_depth}_s{ts_seed}_lr{ts_lr}.log"
    benchmark: "logs/benchmarks/tinystories/eval_w{ts_width}_l{ts_depth}_s{ts_seed}_lr{ts_lr}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.evaluate --model dir:{input.model} --seed {wildcards.ts_seed}"
        " --lr {wildcards.ts_lr} --metrics loss_cloze"
        " --model-id w{wildcards.ts_width}_l{wildcards.ts_depth}_s{wildcards.ts_seed}_lr{wildcards.ts_lr}" + TS_EVAL_TAIL


rule ts_cloze_chance:
    """Empirical chance of the cloze probes: unigram and bigram models of the training tokens, same items."""
    input:
        tokenizer=f"{TS_RES}/tokenizer",
        train=f"{TS_RES}/tokens/train.npy",
        cloze=f"{TS_RES}/corpus/cloze.jsonl",
    output: f"{TS_OUT}/eval/chance.csv"
    params: e=as_json(TS.get("eval"))
    log: "logs/tinystories/cloze_chance.log"
    benchmark: "logs/benchmarks/tinystories/cloze_chance.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.cloze --tokenizer {input.tokenizer} --train-tokens {input.train}"
        " --cloze {input.cloze} --eval-config {params.e} --scale {SCALE} --out {output} > {log} 2>&1"


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
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.evaluate --model reference --model-id reference" + TS_EVAL_TAIL


rule ts_eval_released:
    input:
        **TS_EVAL_DATA,
    output:
        metrics=f"{TS_OUT}/eval/released--{{ts_slug}}.csv",
        samples=f"{TS_OUT}/samples/released--{{ts_slug}}.jsonl",
    params:
        args=ts_eval_args,
        spec=lambda wc: TS_RELEASED[wc.ts_slug],
    log: "logs/tinystories/eval_released--{ts_slug}.log"
    benchmark: "logs/benchmarks/tinystories/eval_released--{ts_slug}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.evaluate --model {params.spec} --model-id released--{wildcards.ts_slug}" + TS_EVAL_TAIL


rule ts_sweep:
    input:
        evals=expand(f"{TS_OUT}/eval/{{model}}.csv", model=TS_MODELS),
        released=expand(f"{TS_OUT}/eval/released--{{slug}}.csv", slug=list(TS_RELEASED)),
        reference=[f"{TS_OUT}/eval/reference.csv", f"{TS_OUT}/eval/chance.csv"] if TS_STORYWORLD else [],
        curves=expand(f"{TS_OUT}/loss_curves/{{model}}.csv", model=TS_MODELS),
    output:
        sweep=f"{TS_OUT}/sweep.csv",
        fit=f"{TS_OUT}/power_law.csv",
        curves=f"{TS_OUT}/loss_curves.csv",
    params:
        n_boot=TS.get("eval", {}).get("bootstrap"),
        grid_lr=TS.get("train", {}).get("lr"),
    log: "logs/tinystories/sweep.log"
    benchmark: "logs/benchmarks/tinystories/sweep.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.aggregate --evals {input.evals} {input.released} {input.reference}"
        " --curves {input.curves} --bootstrap {params.n_boot} --grid-lr {params.grid_lr}"
        " --out {output.sweep} --fit-out {output.fit} --curves-out {output.curves} > {log} 2>&1"


rule ts_samples_table:
    input: expand(f"{TS_OUT}/samples/{{model}}.jsonl", model=TS_GRID)
    output: f"{TS_OUT}/samples.csv"
    log: "logs/tinystories/samples_table.log"
    benchmark: "logs/benchmarks/tinystories/samples_table.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.tinystories.samples_table --samples {input} --out {output} > {log} 2>&1"
