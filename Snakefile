# gpt2-findings: one workflow, six results about GPT-2-class language models, two scales.
#   snakemake --cores all                                             # mini (default, offline, CPU)
#   snakemake --profile profiles/slurm --configfile config/paper.yaml # paper scale on a GPU cluster
#   snakemake results/figures/tinystories__loss_vs_params.png         # one figure from existing CSVs
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "config/schema.yaml", set_default=True)

include: "workflow/rules/common.smk"
include: "workflow/rules/tinystories.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/claims.csv",
        "results/report.md",
        all_figures(),
    default_target: True
