# Generic rules over every result: figures and claims (keyed by {result}, wired by the result's manifest), then
# results/claims.csv + results/sanity_checks.csv -> results/report.md (figures embedded).
wildcard_constraints:
    result="|".join(re.escape(r) for r in MANIFESTS),


rule figure:
    """One figure of one result, from its CSVs only: `snakemake results/figures/<result>__<name>.png`."""
    input: get_figure_inputs
    output:
        png=report(
            "results/figures/{result}__{figure}.png",
            caption="../report/figure.rst",
            category="{result}",
            labels={"figure": "{figure}"},
        ),
        pdf="results/figures/{result}__{figure}.pdf",
    params: caption=get_figure_caption
    log: "logs/{result}/figure_{figure}.log"
    benchmark: "logs/benchmarks/{result}/figure_{figure}.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.report.plot --result {wildcards.result} --figure {wildcards.figure}"
        " --inp {input} --out {output.png} > {log} 2>&1"


rule claims:
    """A result's verdicts (claims.csv), its sanity checks (sanity.csv) and its report section."""
    input: unpack(get_claims_inputs)
    output:
        claims="results/{result}/claims.csv",
        sanity="results/{result}/sanity.csv",
        section="results/{result}/report_section.md",
    params: args=get_claims_args
    log: "logs/{result}/claims.log"
    benchmark: "logs/benchmarks/{result}/claims.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.{wildcards.result}.claims {params.args} --scale {SCALE}"
        " --out {output.claims} --sanity {output.sanity} --section {output.section} > {log} 2>&1"


rule claims_table:
    input:
        claims=get_claims_tables(),
        sanity=get_sanity_tables(),
    output:
        claims=report("results/claims.csv", caption="../report/claims.rst", category="Verdicts"),
        sanity="results/sanity_checks.csv",
    log: "logs/report/claims_table.log"
    benchmark: "logs/benchmarks/report/claims_table.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.report.collect --claims {input.claims} --sanity {input.sanity}"
        " --out {output.claims} --out-sanity {output.sanity} > {log} 2>&1"


rule report:
    input:
        claims="results/claims.csv",
        sanity="results/sanity_checks.csv",
        sections=get_report_sections(),
        figures=all_figures(),
    output: "results/report.md"
    params: results=" ".join(RESULTS)
    log: "logs/report/report.log"
    benchmark: "logs/benchmarks/report/report.tsv"
    conda: CONDA_ENV
    threads: 1
    resources: **CPU_RES
    shell:
        "{RUN_STEP} experiments.report.write --claims {input.claims} --sanity {input.sanity}"
        " --results {params.results} --sections {input.sections} --figures {input.figures} --scale {SCALE}"
        " --out {output} > {log} 2>&1"
