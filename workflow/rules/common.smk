# Config helpers and input functions shared by every result's rules. No result is named here: each result's
# manifest (experiments/<result>/manifest.py, loaded by the Snakefile into MANIFESTS) says what it needs.
import json
import re
import shlex

from experiments.cli import out_flag

SCALE = config["scale"]
RESULTS = config["results"]
COMPUTE = config["compute"]


def check_unique_ids(node, where="config"):
    """Every list of mappings with an `id` key has unique ids (two entries with one id would be merged)."""
    if isinstance(node, dict):
        for key, value in node.items():
            check_unique_ids(value, f"{where}.{key}")
    elif isinstance(node, list):
        ids = [x["id"] for x in node if isinstance(x, dict) and "id" in x]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"{where}: duplicate id(s) {dup}; each entry needs its own id")
        for i, x in enumerate(node):
            check_unique_ids(x, f"{where}[{i}]")


def check_config():
    """Cross-field checks JSON schema cannot express (each result's in its manifest); fail before any job."""
    check_unique_ids(config)
    for result in RESULTS:
        MANIFESTS[result].check_config(config[result], config)


check_config()


# `--software-deployment-method conda` runs every rule in this environment (path relative to workflow/rules/;
# it holds the dependencies, the package is imported from the repository root): each rule says `conda: CONDA_ENV`.
CONDA_ENV = "../../envs/pipeline.yaml"


def as_json(obj):
    """A config value as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def out_args(wildcards, output):
    """A rule's named outputs as `--out-<name> PATH` options (experiments.cli.add_output_args): each file name
    is spelled once, in the rule. Use as `params: outs=out_args` and `{params.outs}` in the shell command."""
    return " ".join(f"{out_flag(name)} {shlex.quote(str(path))}" for name, path in output.items())


def opt(value):
    """A config value as a CLI argument string; None becomes the literal 'none' (experiments.cli.optional)."""
    return "none" if value is None else str(value)


# Resources are derived from config, never duplicated per profile: GPU rules ask for a GPU only
# when compute.gpu is true (paper scale); CPU rules never do.
# Memory and runtime grow with the attempt: a job that fails (e.g. killed by SLURM for memory or time)
# is retried (`retries:` in profiles/slurm) with 2x, 3x, ... the configured value. A rule's own resources
# override the profile's default-resources, so the scaling has to be here.
THREADS = COMPUTE["threads_per_job"]
GPUS = 1 if COMPUTE["gpu"] else 0
_MEM = COMPUTE["mem_mb"]
_GPU_JOB_MEM = COMPUTE["gpu_mem_mb"] if COMPUTE["gpu"] else COMPUTE["mem_mb"]
_RUNTIME = COMPUTE["runtime_min"]
CPU_RES = dict(mem_mb=lambda wildcards, attempt: _MEM * attempt,
               runtime=lambda wildcards, attempt: _RUNTIME * attempt)
GPU_MEM = lambda wildcards, attempt: _GPU_JOB_MEM * attempt
# Everything a GPU-labelled rule asks for: `resources: **GPU_RES` (runtime scaling with the attempt too).
GPU_RES = dict(mem_mb=GPU_MEM, runtime=CPU_RES["runtime"], gpu=GPUS)


# Scheduling only (outputs never depend on it): on 2 cores the mini DAG keeps both busy 97% of the time, but at
# 1b55882 the occupational-bias training (232 s) became ready at minute 8 and started at minute 43, so its chain
# (generate, exact, analyse, claims) ran last with one core idle for ~90 s. Trainings and the steps that unlock
# them start before the short jobs (evals, figures, claims) that can fill the end of the run.
LONG_FIRST = 1


def all_figures():
    """Every figure of every selected result (results/figures/<result>__<name>.png)."""
    return [f for r in RESULTS for f in MANIFESTS[r].figure_paths()]


def get_figure_inputs(wildcards):
    """The CSVs one figure is drawn from (its manifest entry)."""
    return MANIFESTS[wildcards.result].figure(wildcards.figure).inputs(config[wildcards.result])


def get_figure_caption(wildcards):
    return MANIFESTS[wildcards.result].figure(wildcards.figure).caption


def get_claims_inputs(wildcards):
    """The claims step's named inputs (argument name -> path or paths), from the result's manifest."""
    return MANIFESTS[wildcards.result].claims_inputs(config[wildcards.result])


def get_claims_args(wildcards, input):
    """`--<name> PATH...` for every named input, then the result's extra arguments and its thresholds."""
    args = []
    for name in get_claims_inputs(wildcards):
        paths = input[name] if isinstance(input[name], list) else [input[name]]
        args.append(f"--{name.replace('_', '-')} " + " ".join(shlex.quote(str(p)) for p in paths))
    section = config[wildcards.result]
    args.append(MANIFESTS[wildcards.result].claims_args(section, config))
    args.append(f"--thresholds {as_json(section['claims'])}")
    return " ".join(a for a in args if a)


def get_claims_tables():
    return [f"results/{r}/claims.csv" for r in RESULTS]


def get_sanity_tables():
    return [f"results/{r}/sanity.csv" for r in RESULTS]


def get_report_sections():
    return [f"results/{r}/report_section.md" for r in RESULTS]


# Every step runs as `python -m experiments.warm MODULE ARGS`, which is `python -m MODULE ARGS` run in a worker
# forked from an interpreter that already imported torch, transformers, pandas, ... when this run started one
# (compute.warm, local runs: ~75 mini jobs each saved ~5-7 s of imports), else in its own process (experiments/warm.py).
RUN_STEP = "python -m experiments.warm"
_WARM = {}


def start_warm_server():
    """The pre-imported server for this run's local jobs (called by onstart); jobs find it through $GPT2F_WARM."""
    import os
    import subprocess
    import sys
    import tempfile

    from experiments.warm import ENV, thread_env

    path = os.path.join(tempfile.gettempdir(), f"gpt2f-warm-{os.getuid()}-{os.getpid()}.sock")
    os.makedirs("logs", exist_ok=True)
    with open("logs/warm_server.log", "a") as log:
        _WARM["proc"] = subprocess.Popen([sys.executable, "-m", "experiments.warm", "--serve", path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **thread_env(THREADS)},  # what jobs get
                                         start_new_session=True)  # Ctrl-C stops Snakemake; the server follows
    os.environ[ENV] = path  # jobs started before it listens run cold


def stop_warm_server():
    proc = _WARM.pop("proc", None)
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=30)
