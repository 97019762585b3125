# gpt2-findings: one workflow, six results about GPT-2-class language models, two scales.
#   snakemake --cores all                                             # mini (default, offline, CPU)
#   snakemake --profile profiles/slurm --configfile config/paper.yaml # paper scale on a GPU cluster
#   snakemake results/figures/tinystories__loss_vs_params.png         # one figure from existing CSVs
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "config/schema.yaml", set_default=True)

include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/tinystories.smk"
include: "workflow/rules/ln_removal.smk"
include: "workflow/rules/occupational_bias.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/claims.csv",
        "results/report.md",
        all_figures(),
    default_target: True


onstart:
    # Fail before any job when a hub model or dataset the config names is not in the local cache
    # (never during `snakemake -n`, so the paper DAG can be listed on a machine without them).
    from experiments.check_paper import artifacts, check

    missing = [p for kind, name, _ in artifacts(config) if (p := check(kind, name))]
    if missing:
        raise WorkflowError("missing external artifacts (run `make check-paper`):\n" + "\n".join(missing))
