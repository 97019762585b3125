# Claims of every selected result -> results/claims.csv -> results/report.md (figures embedded).
rule claims_table:
    input: [CLAIMS[r] for r in RESULTS]
    output: "results/claims.csv"
    log: "logs/report/claims_table.log"
    benchmark: "logs/benchmarks/report/claims_table.tsv"
    threads: 1
    resources: **CPU_RES
    shell: "python -m experiments.report.collect --claims {input} --out {output} > {log} 2>&1"


rule report:
    input:
        claims="results/claims.csv",
        sections=[SECTIONS[r] for r in RESULTS],
        figures=all_figures(),
    output: "results/report.md"
    params: results=" ".join(RESULTS)
    log: "logs/report/report.log"
    benchmark: "logs/benchmarks/report/report.tsv"
    threads: 1
    resources: **CPU_RES
    shell:
        "python -m experiments.report.write --claims {input.claims} --results {params.results}"
        " --sections {input.sections} --figures {input.figures} --scale {SCALE} --out {output} > {log} 2>&1"
