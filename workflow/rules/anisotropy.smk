# Anisotropy across languages and contrastive search (Su & Collier, TMLR 2023): texts per language -> tiny
# GPT-2s trained per language (mini) -> isotropy per model x language x layer -> decoding comparison (six methods,
# coherence under a scorer other than the generator) -> figures + claims (generic rules in report.smk, wired by
# experiments/anisotropy/manifest.py). Wiring only; every step is `python -m experiments.<...>`.
import re

from experiments.anisotropy.manifest import available_tiny_languages, tiny_model_dir, tiny_model_id

AN = config.get("anisotropy", {})
AN_RES = "resources/anisotropy"
AN_OUT = "results/anisotropy"
AN_TEXTS = f"{AN_RES}/texts"
AN_TEXT_FILES = ("eval.jsonl", "prompts.jsonl", "train.txt", "val.txt", "status.json")
AN_T = AN.get("texts", {})
AN_LANGS = AN_T.get("languages", [])
AN_MODELS = {m["id"]: m for m in AN.get("models", [])}
AN_TINY = AN.get("tiny", {})
AN_TINY_LANGS = available_tiny_languages(AN) if AN else []  # tiny languages whose texts exist (others: not-run rows)
AN_DEC = AN.get("decoding", {})

wildcard_constraints:
    an_model="|".join(re.escape(m) for m in AN_MODELS) or "NONE",
    an_lang="|".join(re.escape(l) for l in AN_LANGS) or "NONE",


def an_text(lang, name):
    return f"{AN_TEXTS}/{lang}/{name}"


def an_dtype(model):
    """`--dtype X` when the model entry names a compute dtype (paper: bf16 for the largest OPTs), else float32."""
    return f"--dtype {model['dtype']}" if model.get("dtype") else ""


rule an_texts:
    """Every language's texts in one job: isotropy sample, held-out prefixes, tiny-LM training corpus, status."""
    output: [an_text(l, f) for l in AN_LANGS for f in AN_TEXT_FILES]
    params:
        t=AN_T,
        langs=" ".join(AN_LANGS),
        path=f"--path {AN_T['path']}" if AN_T.get("path") else "",
        seed=AN.get("seed"),
    log: "logs/anisotropy/texts.log"
    benchmark: "logs/benchmarks/anisotropy/texts.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.texts --langs {params.langs} --source {params.t[source]} {params.path}"
        " --seed {params.seed} --n-eval {params.t[n_eval]} --n-prompts {params.t[n_prompts]}"
        " --prompt-min-chars {params.t[prompt_min_chars]} --n-val {params.t[n_val]}"
        " --min-chars {params.t[min_chars]} --max-chars {params.t[max_chars]} --out-dir {AN_TEXTS} > {log} 2>&1"


rule an_webtext_prompts:
    """Paper scale: the English decoding prefixes from the WebText test split (a local file; fails when absent)."""
    output: [f"{AN_RES}/webtext/en/{f}" for f in AN_TEXT_FILES]
    params: path=AN_DEC.get("webtext_path"), n=1000000  # every document: an_decode keeps the first long enough
    log: "logs/anisotropy/webtext_prompts.log"
    benchmark: "logs/benchmarks/anisotropy/webtext_prompts.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.texts --langs en --source webtext --path {params.path} --n-eval 0"
        " --n-prompts {params.n} --min-chars 1 --max-chars 1 --out-dir {AN_RES}/webtext > {log} 2>&1"


rule an_corpus:
    """BPE tokenizer + token streams of every tiny language, in one job."""
    input:
        train=[an_text(l, "train.txt") for l in AN_TINY_LANGS],
        val=[an_text(l, "val.txt") for l in AN_TINY_LANGS],
    output:
        tokenizers=[directory(f"{AN_RES}/corpus/{l}/tokenizer") for l in AN_TINY_LANGS],
        train=[f"{AN_RES}/corpus/{l}/train.npy" for l in AN_TINY_LANGS],
        val=[f"{AN_RES}/corpus/{l}/val.npy" for l in AN_TINY_LANGS],
    params:
        args=" ".join(f"--lang {l} --train {an_text(l, 'train.txt')} --val {an_text(l, 'val.txt')}"
                      f" --tokenizer-out {AN_RES}/corpus/{l}/tokenizer --train-out {AN_RES}/corpus/{l}/train.npy"
                      f" --val-out {AN_RES}/corpus/{l}/val.npy" for l in AN_TINY_LANGS),
        vocab=AN_TINY.get("vocab_size"),
    log: "logs/anisotropy/corpus.log"
    benchmark: "logs/benchmarks/anisotropy/corpus.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.anisotropy.corpus {params.args} --vocab-size {params.vocab} > {log} 2>&1"


rule an_train:
    """A tiny GPT-2 on one language's fortunes, by the one training CLI."""
    input:
        tokenizer=f"{AN_RES}/corpus/{{an_lang}}/tokenizer",
        train=f"{AN_RES}/corpus/{{an_lang}}/train.npy",
        val=f"{AN_RES}/corpus/{{an_lang}}/val.npy",
    output:
        model=directory(tiny_model_dir("{an_lang}")),
        curve=f"{AN_OUT}/training/{{an_lang}}.csv",
    params:
        model_id=lambda wc: tiny_model_id(wc.an_lang),
        arch=AN_TINY.get("arch"),
        shape=as_json(AN_TINY.get("shape")),
        train=as_json(AN_TINY.get("train")),
        seed=AN.get("train_seed"),
        ckpt=f"{AN_RES}/checkpoints/{{an_lang}}",
    log: "logs/anisotropy/train_{an_lang}.log"
    benchmark: "logs/benchmarks/anisotropy/train_{an_lang}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    priority: LONG_FIRST
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.lm.train --model-id {params.model_id} --arch {params.arch} --shape {params.shape}"
        " --tokenizer {input.tokenizer} --train {input.train} --val {input.val} --train-config {params.train}"
        " --seed {params.seed} --device {COMPUTE[device]} --threads {threads} --checkpoint-dir {params.ckpt}"
        " --out {output.model} --curve {output.curve} > {log} 2>&1"


def an_measure_args(langs):
    m = AN["measure"]
    return (" --texts " + " ".join(f"{l}={an_text(l, 'eval.jsonl')}" for l in langs)
            + " --status " + " ".join(f"{l}={an_text(l, 'status.json')}" for l in langs)
            + f" --max-tokens {AN['max_tokens']} --layers {m['layers']} --batch-size {m['batch_size']}"
            + f" --bootstrap {m['bootstrap']} --check-texts {m['check_texts']} --seed {AN['seed']}"
            + f" --device {COMPUTE['device']}")


def an_pretrained_models(model):
    m = AN_MODELS[model]
    return [{"id": m["id"], "label": m["label"], "spec": m["spec"], "kind": "pretrained", "langs": m["langs"],
             "bos": m["bos"]}]


rule an_measure:
    """Isotropy of one pretrained model on each of its languages (every layer, with and without position 0)."""
    input:
        model=lambda wc: built_model_input(AN_MODELS[wc.an_model]["spec"]),
        texts=lambda wc: [an_text(l, f) for l in AN_MODELS[wc.an_model]["langs"]
                          for f in ("eval.jsonl", "status.json")],
    output: f"{AN_OUT}/isotropy/{{an_model}}.csv"
    params:
        models=lambda wc: as_json(an_pretrained_models(wc.an_model)),
        args=lambda wc: an_measure_args(AN_MODELS[wc.an_model]["langs"]),
        dtype=lambda wc: an_dtype(AN_MODELS[wc.an_model]),
    log: "logs/anisotropy/measure_{an_model}.log"
    benchmark: "logs/benchmarks/anisotropy/measure_{an_model}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.measure --models {params.models} {params.args} --threads {threads}"
        " {params.dtype} --out {output} > {log} 2>&1"


rule an_measure_tiny:
    """Isotropy of every tiny GPT-2 trained here and of its random-init twin (same build and seed, no step)."""
    input:
        models=[tiny_model_dir(l) for l in AN_TINY_LANGS],
        texts=[an_text(l, f) for l in AN_TINY_LANGS for f in ("eval.jsonl", "status.json")],
    output: f"{AN_OUT}/isotropy/tiny.csv"
    params:
        models=as_json([{"id": tiny_model_id(l), "label": f"tiny GPT-2 trained here on {l} fortunes",
                         "spec": f"dir:{tiny_model_dir(l)}", "kind": "trained_here", "langs": [l],
                         "variants": ["trained", "random_init"]} for l in AN_TINY_LANGS]),
        args=an_measure_args(AN_TINY_LANGS),
    log: "logs/anisotropy/measure_tiny.log"
    benchmark: "logs/benchmarks/anisotropy/measure_tiny.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.measure --models {params.models} {params.args} --threads {threads}"
        " --out {output} > {log} 2>&1"


AN_MEASURED = [f"{AN_OUT}/isotropy/{m}.csv" for m in AN_MODELS] + ([f"{AN_OUT}/isotropy/tiny.csv"] if AN_TINY_LANGS else [])


rule an_isotropy:
    """One table: every measurement, plus a 'not run: missing data' row per tiny language without texts."""
    input:
        measured=AN_MEASURED,
        status=[an_text(l, "status.json") for l in AN.get("tiny", {}).get("languages", [])],
    output:
        all=f"{AN_OUT}/isotropy.csv",
        final=f"{AN_OUT}/isotropy_final.csv",
    params:
        tiny=" ".join(AN_TINY.get("languages", [])) or "none",
        status=" ".join(f"{l}={an_text(l, 'status.json')}" for l in AN_TINY.get("languages", [])) or "none",
        outs=out_args,
    log: "logs/anisotropy/isotropy.log"
    benchmark: "logs/benchmarks/anisotropy/isotropy.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.collect --measured {input.measured} --tiny-langs {params.tiny}"
        " --status {params.status} {params.outs} > {log} 2>&1"


def an_prompts_file():
    if AN_DEC.get("prompts_source") == "webtext":
        return f"{AN_RES}/webtext/en/prompts.jsonl"
    return an_text(AN_DEC.get("prompts_lang"), "prompts.jsonl")


rule an_decode:
    """Greedy, beam, top-k, nucleus, typical and contrastive continuations of held-out prefixes by the generator."""
    input:
        model=built_model_input(AN_DEC["generator"]["spec"]) if AN_DEC else [],
        prompts=an_prompts_file() if AN_DEC else [],
    output: f"{AN_OUT}/generations.csv"
    params:
        d=AN_DEC,
        methods=as_json(AN_DEC.get("methods")),
        seeds=" ".join(map(str, AN_DEC.get("seeds", []))),
        dtype=an_dtype(AN_DEC.get("generator", {})),
    log: "logs/anisotropy/decode.log"
    benchmark: "logs/benchmarks/anisotropy/decode.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.decode --spec {params.d[generator][spec]}"
        " --model-id {params.d[generator][id]} --prompts {input.prompts} --n-prompts {params.d[n_prompts]}"
        " --prefix-tokens {params.d[prefix_tokens]} --new-tokens {params.d[new_tokens]} --methods {params.methods}"
        " --seeds {params.seeds} --batch-size {params.d[batch_size]} --seed {AN[seed]} --device {COMPUTE[device]}"
        " --threads {threads} {params.dtype} --out {output} > {log} 2>&1"


rule an_metrics:
    """rep-n, diversity, length, and coherence under the scorer (a model other than the generator)."""
    input:
        generations=f"{AN_OUT}/generations.csv",
        scorer=built_model_input(AN_DEC["scorer"]["spec"]) if AN_DEC else [],
    output:
        summary=f"{AN_OUT}/decoding.csv",
        per_prompt=f"{AN_OUT}/decoding_per_prompt.csv",
    params: d=AN_DEC, boot=AN.get("measure", {}).get("bootstrap"), outs=out_args
    log: "logs/anisotropy/metrics.log"
    benchmark: "logs/benchmarks/anisotropy/metrics.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **GPU_RES
    shell:
        "{RUN_STEP} experiments.anisotropy.metrics --generations {input.generations}"
        " --scorer-spec {params.d[scorer][spec]} --scorer-id {params.d[scorer][id]} --unit {params.d[unit]}"
        " --scorer-start {params.d[scorer][start]}"
        " --bootstrap {params.boot} --seed {AN[seed]} --device {COMPUTE[device]} --threads {threads}"
        " {params.outs} > {log} 2>&1"
