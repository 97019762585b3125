DR = config.get("dummy_result", {})

rule dummy_values:
    output: "results/dummy_result/values.csv"
    params: n=DR.get("n")
    shell: "python -m experiments.dummy_result.step --n {params.n} --out {output}"
