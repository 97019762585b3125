# Config helpers and input functions shared by every result's rules. No paper logic here.
import json
import shlex

SCALE = config["scale"]
RESULTS = config["results"]
COMPUTE = config["compute"]


def check_config():
    """Cross-field checks JSON schema cannot express; fail before any job with the key named."""
    ts = config.get("tinystories")
    if "tinystories" in RESULTS:
        if ts is None:
            raise ValueError("config: results lists 'tinystories' but there is no 'tinystories:' section")
        if ts["tokenizer"]["kind"] == "pretrained" and not ts["tokenizer"]["pretrained"]:
            raise ValueError("config: tinystories.tokenizer.kind = pretrained needs tinystories.tokenizer.pretrained")
        if ts["judge"]["kind"] == "hf_local" and not ts["judge"]["model"]:
            raise ValueError("config: tinystories.judge.kind = hf_local needs tinystories.judge.model")
        if ts["judge"]["kind"] == "exact" and ts["data"]["source"] != "storyworld":
            raise ValueError("config: tinystories.judge.kind = exact grades StoryWorld text only; "
                             "use none or hf_local with tinystories.data.source = hub")
        for w in ts["model"]["widths"]:
            if w % ts["model"]["n_heads"]:
                raise ValueError(f"config: tinystories.model.widths: {w} is not divisible by n_heads "
                                 f"= {ts['model']['n_heads']}")
        if ts["train"]["block_size"] > ts["model"]["context"]:
            raise ValueError("config: tinystories.train.block_size exceeds tinystories.model.context")


check_config()


def as_json(obj):
    """A config value as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def opt(value):
    """A config value as a CLI argument string; None becomes the literal 'none'."""
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


def result_figures(result):
    """Figure paths a result declares (each result's .smk fills FIGURES[result])."""
    return [f"results/figures/{result}__{name}.png" for name in FIGURES.get(result, [])]


def all_figures():
    return [f for r in RESULTS for f in result_figures(r)]


FIGURES = {}
CLAIMS = {}  # result -> its claims CSV
SECTIONS = {}  # result -> its report section markdown
