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
THREADS = COMPUTE["threads_per_job"]
GPUS = 1 if COMPUTE["gpu"] else 0
CPU_RES = dict(mem_mb=COMPUTE["mem_mb"], runtime=COMPUTE["runtime_min"])
GPU_MEM = COMPUTE["gpu_mem_mb"] if COMPUTE["gpu"] else COMPUTE["mem_mb"]


def result_figures(result):
    """Figure paths a result declares (each result's .smk fills FIGURES[result])."""
    return [f"results/figures/{result}__{name}.png" for name in FIGURES.get(result, [])]


def all_figures():
    return [f for r in RESULTS for f in result_figures(r)]


FIGURES = {}
CLAIMS = {}  # result -> its claims CSV
SECTIONS = {}  # result -> its report section markdown
