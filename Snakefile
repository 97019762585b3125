# gpt2-findings: one workflow, six results about GPT-2-class language models, two scales.
#   snakemake --cores all                                             # mini (default, offline, CPU)
#   snakemake --profile profiles/slurm --configfile config/paper.yaml # paper scale on a GPU cluster
#   snakemake results/figures/tinystories__loss_vs_params.png         # one figure from existing CSVs
# Results are plug-ins: experiments/<result>/manifest.py, workflow/rules/<result>.smk, config/schemas/<result>.yaml.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from experiments.manifest import available_results, load_manifest

min_version("9.0")

configfile: "config/config.yaml"

validate(config, "config/schema.yaml", set_default=True)
KNOWN_RESULTS = available_results()
for _key in config:
    if _key not in ("scale", "results", "compute", "converted_models") and _key not in KNOWN_RESULTS:
        raise WorkflowError(f"config: unknown top-level key {_key!r}; results with a manifest: {KNOWN_RESULTS}")
for _result in config["results"]:
    if _result not in KNOWN_RESULTS:
        raise WorkflowError(f"config: results lists {_result!r}, which has no experiments/{_result}/manifest.py "
                            f"(known: {KNOWN_RESULTS})")
    if _result not in config:
        raise WorkflowError(f"config: results lists {_result!r} but there is no '{_result}:' section")
for _result in KNOWN_RESULTS:
    if _result in config:
        validate(config[_result], f"config/schemas/{_result}.yaml", set_default=True)
MANIFESTS = {r: load_manifest(r) for r in KNOWN_RESULTS}

report: "workflow/report/workflow.rst"  # `snakemake --report results/report.html` opens on the verdicts

include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
for _result in KNOWN_RESULTS:  # every result's rules (one result may build on another's, e.g. its models)
    include: f"workflow/rules/{_result}.smk"
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
    if COMPUTE["warm"]:
        start_warm_server()


onsuccess:
    stop_warm_server()


onerror:
    stop_warm_server()
