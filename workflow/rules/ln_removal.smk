# LayerNorm removal (Heimersheim 2409.13710; Baroni et al. 2507.02559): [train the base on with LN kept, towards
# a loss plateau (mini)] -> fine-tune it while its LNs are replaced on a schedule -> LN-free model + with-LN
# control -> CE / DLA / confidence neurons -> data scaling -> figures + claims (generic rules in report.smk,
# wired by experiments/ln_removal/manifest.py). Wiring only; every step is `python -m experiments.ln_removal.<step>`.
import re

LNR = config.get("ln_removal", {})
LNR_RES = "resources/ln_removal"
LNR_OUT = "results/ln_removal"
LNR_MODELS = {m["id"]: m["spec"] for m in LNR.get("models", [])}  # model id -> spec (dir:PATH | hub:NAME[@rev])
LNR_PER_MODEL = LNR.get("per_model", {})  # model id -> {train: {...}, schedule: {...}, aux_weight: w} overrides


def lnr_opt(model, key):
    """A config block for one model: the shared block updated by its per_model override."""
    base, over = LNR.get(key), LNR_PER_MODEL.get(model, {}).get(key)
    if isinstance(base, dict):
        return {**base, **(over or {})}
    return base if over is None else over


def lnr_steps(model):
    return lnr_opt(model, "train")["max_steps"]


def lnr_tokens(model, steps):
    t = lnr_opt(model, "train")
    return int(steps) * t["batch_size"] * t["block_size"] * t["grad_accum"]


LNR_SCALING = [(m, s) for m in LNR_MODELS for s in LNR["scaling_steps"] if s != lnr_steps(m)]
LNR_DATA = LNR.get("data", {})
LNR_TRAIN = LNR_DATA.get("train")  # token streams the fine-tuning reads (schema: required)
LNR_VAL = LNR_DATA.get("val")

wildcard_constraints:
    lnr_model="|".join(re.escape(m) for m in LNR_MODELS) or "NONE",
    lnr_mode=r"ln_free|with_ln",
    lnr_steps=r"\d+",


LNR_CONVERGE = LNR.get("converge", {})  # LN-kept rounds before removal (schema default max_rounds 0: none)


def lnr_converge_train(model):
    """The fine-tune's train block with the LN-kept rounds' own lr / min_lr where converge sets them."""
    over = {k: LNR_CONVERGE[k] for k in ("lr", "min_lr") if LNR_CONVERGE.get(k) is not None}
    return {**lnr_opt(model, "train"), **over}


def lnr_base_input(wildcards):
    """The base model dir when it is built by this workflow (dir: specs); hub models come from the cache."""
    return built_model_input(LNR_MODELS[wildcards.lnr_model])


def lnr_start_dir(model):
    """Where the LN-free run and its control start: the trained-on base (converge.max_rounds > 0) or None."""
    return f"{LNR_RES}/bases/{model}" if LNR_CONVERGE["max_rounds"] > 0 else None


def lnr_start_spec(model):
    d = lnr_start_dir(model)
    return f"dir:{d}" if d else LNR_MODELS[model]


def lnr_start_input(wildcards):
    d = lnr_start_dir(wildcards.lnr_model)
    return [d] if d else lnr_base_input(wildcards)


rule lnr_converge:
    """LN-kept rounds (warm restarts of the fine-tune's schedule) until `patience` rounds in a row each lower val
    CE by < tol, or the round cap."""
    input:
        base=lnr_base_input,
        train=LNR_TRAIN,
        val=LNR_VAL,
    output:
        model=directory(f"{LNR_RES}/bases/{{lnr_model}}"),
        rounds=f"{LNR_OUT}/converge/{{lnr_model}}.csv",
    params:
        spec=lambda wc: LNR_MODELS[wc.lnr_model],
        train=lambda wc: as_json(lnr_converge_train(wc.lnr_model)),
        c=LNR_CONVERGE,
        seed=LNR.get("seed"),
        device=COMPUTE["device"],
        ckpt=f"{LNR_RES}/checkpoints/{{lnr_model}}/converge",
    log: "logs/ln_removal/converge_{lnr_model}.log"
    benchmark: "logs/benchmarks/ln_removal/converge_{lnr_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.converge --model {params.spec} --model-id {wildcards.lnr_model}"
        " --train {input.train} --val {input.val} --train-config {params.train}"
        " --round-steps {params.c[round_steps]} --max-rounds {params.c[max_rounds]} --tol {params.c[tol]}"
        " --patience {params.c[patience]}"
        " --eval-blocks {params.c[eval_blocks]} --seed {params.seed} --device {params.device} --threads {threads}"
        " --checkpoint-dir {params.ckpt} --out {output.model} --rounds {output.rounds} > {log} 2>&1"


rule lnr_tokens:
    """Paper scale: OpenWebText tokens from the local HF cache (fails with MissingArtifactError when absent)."""
    output:
        train=f"{LNR_RES}/tokens/train.npy",
        val=f"{LNR_RES}/tokens/val.npy",
    params:
        d=LNR_DATA,
        revision=opt(LNR_DATA.get("hub_revision")),
        max_docs=lambda wc: f"--max-docs {LNR_DATA['max_docs']}" if LNR_DATA.get("max_docs") else "",
    log: "logs/ln_removal/tokens.log"
    benchmark: "logs/benchmarks/ln_removal/tokens.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.data --dataset {params.d[hub_dataset]} --revision {params.revision}"
        " --tokenizer {params.d[tokenizer]} {params.max_docs}"
        " --out-train {output.train} --out-val {output.val} > {log} 2>&1"


rule lnr_remove:
    input:
        base=lnr_start_input,
        train=LNR_TRAIN,
        val=LNR_VAL,
    output:
        model=directory(f"{LNR_RES}/models/{{lnr_model}}/{{lnr_mode}}_{{lnr_steps}}"),
        curve=f"{LNR_OUT}/curves/{{lnr_model}}/{{lnr_mode}}_{{lnr_steps}}.csv",
        events=f"{LNR_OUT}/events/{{lnr_model}}/{{lnr_mode}}_{{lnr_steps}}.csv",
    params:
        spec=lambda wc: lnr_start_spec(wc.lnr_model),
        train=lambda wc: as_json(lnr_opt(wc.lnr_model, "train")),
        schedule=lambda wc: as_json(lnr_opt(wc.lnr_model, "schedule")),
        aux=lambda wc: lnr_opt(wc.lnr_model, "aux_weight"),
        seed=LNR.get("seed"),
        device=COMPUTE["device"],
        ckpt=f"{LNR_RES}/checkpoints/{{lnr_model}}/{{lnr_mode}}_{{lnr_steps}}",
    log: "logs/ln_removal/remove_{lnr_model}_{lnr_mode}_{lnr_steps}.log"
    benchmark: "logs/benchmarks/ln_removal/remove_{lnr_model}_{lnr_mode}_{lnr_steps}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.remove --model {params.spec} --model-id {wildcards.lnr_model}"
        " --mode {wildcards.lnr_mode} --train {input.train} --val {input.val} --train-config {params.train}"
        " --max-steps {wildcards.lnr_steps} --schedule {params.schedule} --aux-weight {params.aux}"
        " --seed {params.seed} --device {params.device} --threads {threads} --checkpoint-dir {params.ckpt}"
        " --out {output.model} --curve {output.curve} --events {output.events} > {log} 2>&1"


def lnr_eval_args(wildcards):
    e = LNR["eval"]
    return (f"--block-size {lnr_opt(wildcards.lnr_model, 'train')['block_size']} --n-blocks {e['n_blocks']} --dla-blocks {e['dla_blocks']}"
            f" --n-neurons {e['n_neurons']} --bootstrap {e['bootstrap']} --device {COMPUTE['device']}")


rule lnr_evaluate:
    input:
        base=lnr_start_input,
        free=lambda wc: f"{LNR_RES}/models/{wc.lnr_model}/ln_free_{lnr_steps(wc.lnr_model)}",
        control=lambda wc: f"{LNR_RES}/models/{wc.lnr_model}/with_ln_{lnr_steps(wc.lnr_model)}",
        val=LNR_VAL,
    output:
        ce=f"{LNR_OUT}/eval/{{lnr_model}}/ce.csv",
        dla=f"{LNR_OUT}/eval/{{lnr_model}}/dla.csv",
        neurons=f"{LNR_OUT}/eval/{{lnr_model}}/neurons.csv",
    params:
        spec=lambda wc: lnr_start_spec(wc.lnr_model),  # "original" = the model LN is removed from
        args=lnr_eval_args,
        tokens=lambda wc: lnr_tokens(wc.lnr_model, lnr_steps(wc.lnr_model)),
    log: "logs/ln_removal/evaluate_{lnr_model}.log"
    benchmark: "logs/benchmarks/ln_removal/evaluate_{lnr_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.evaluate --model-id {wildcards.lnr_model} --original {params.spec}"
        " --ln-free dir:{input.free} --control dir:{input.control} --val {input.val} {params.args}"
        " --tokens {params.tokens} --threads {threads} --out-ce {output.ce} --out-dla {output.dla}"
        " --out-neurons {output.neurons} > {log} 2>&1"


rule lnr_scaling_eval:
    input:
        base=lnr_start_input,
        free=f"{LNR_RES}/models/{{lnr_model}}/ln_free_{{lnr_steps}}",
        control=f"{LNR_RES}/models/{{lnr_model}}/with_ln_{{lnr_steps}}",
        val=LNR_VAL,
    output: f"{LNR_OUT}/scaling/{{lnr_model}}/ce_{{lnr_steps}}.csv"
    params:
        spec=lambda wc: lnr_start_spec(wc.lnr_model),  # "original" = the model LN is removed from
        args=lnr_eval_args,
        tokens=lambda wc: lnr_tokens(wc.lnr_model, wc.lnr_steps),
    log: "logs/ln_removal/scaling_eval_{lnr_model}_{lnr_steps}.log"
    benchmark: "logs/benchmarks/ln_removal/scaling_eval_{lnr_model}_{lnr_steps}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.evaluate --model-id {wildcards.lnr_model} --original {params.spec}"
        " --ln-free dir:{input.free} --control dir:{input.control} --ce-only --val {input.val} {params.args}"
        " --tokens {params.tokens}"
        " --threads {threads} --out-ce {output} > {log} 2>&1"


rule lnr_aggregate:
    input:
        curves=[f"{LNR_OUT}/curves/{m}/{mode}_{lnr_steps(m)}.csv" for m in LNR_MODELS for mode in ("ln_free", "with_ln")],
        events=[f"{LNR_OUT}/events/{m}/ln_free_{lnr_steps(m)}.csv" for m in LNR_MODELS],
        ce=expand(f"{LNR_OUT}/eval/{{m}}/ce.csv", m=list(LNR_MODELS)),
        dla=expand(f"{LNR_OUT}/eval/{{m}}/dla.csv", m=list(LNR_MODELS)),
        neurons=expand(f"{LNR_OUT}/eval/{{m}}/neurons.csv", m=list(LNR_MODELS)),
        converge=[f"{LNR_OUT}/converge/{m}.csv" for m in LNR_MODELS if lnr_start_dir(m)],
    output:
        curves=f"{LNR_OUT}/curves.csv",
        converge=f"{LNR_OUT}/converge.csv",
        ce=f"{LNR_OUT}/ce.csv",
        dla=f"{LNR_OUT}/dla.csv",
        neurons=f"{LNR_OUT}/neurons.csv",
    params: outs=out_args
    log: "logs/ln_removal/aggregate.log"
    benchmark: "logs/benchmarks/ln_removal/aggregate.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.aggregate --curves {input.curves} --events {input.events}"
        " --ce {input.ce} --dla {input.dla} --neurons {input.neurons} --converge {input.converge}"
        " {params.outs} > {log} 2>&1"


rule lnr_scaling:
    input:
        main=expand(f"{LNR_OUT}/eval/{{m}}/ce.csv", m=list(LNR_MODELS)),
        extra=[f"{LNR_OUT}/scaling/{m}/ce_{s}.csv" for m, s in LNR_SCALING],
    output:
        points=f"{LNR_OUT}/scaling.csv",
        fit=f"{LNR_OUT}/scaling_fit.csv",
    params:
        target=LNR.get("claims", {}).get("max_rel_delta_ce"),  # the small_ce_cost target (schema default)
    log: "logs/ln_removal/scaling.log"
    benchmark: "logs/benchmarks/ln_removal/scaling.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.ln_removal.scaling --ce {input.main} {input.extra}"
        " --target-rel-delta-ce {params.target} --out {output.points} --fit-out {output.fit} > {log} 2>&1"
