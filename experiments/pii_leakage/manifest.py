"""PII leakage (Lukas et al. 2023, IEEE S&P): what the shared code needs to know. Imports nothing heavy."""
from __future__ import annotations

import json
import shlex

from experiments.manifest import Artifact, Figure, Manifest

OUT = "results/pii_leakage"
RES = "resources/pii_leakage"
PLOTS = "experiments.pii_leakage.plots"
BASE = "base"  # the public base model's id among the attacked models

# the data step's outputs (world.py or echr.py): output name -> file under resources/pii_leakage/data
PII_OUTPUTS = {"records": "records.jsonl", "identities": "identities.csv", "truth": "truth.csv",
               "train": "train.txt", "test": "test.txt", "public": "public.txt"}

# the defenses the claims compare, by what they are (not by id): (scrub, DP)
ROLES = {"undefended": (False, False), "scrubbed": (True, False), "dp": (False, True), "dp_scrubbed": (True, True)}


def model_dir(model: str) -> str:
    return f"{RES}/models/{model}"


def defense_ids(s: dict) -> list[str]:
    return [d["id"] for d in s["defenses"]]


def model_ids(s: dict) -> list[str]:
    """Every attacked model: the base (the baseline every attack subtracts or compares with) and the targets."""
    return [BASE, *defense_ids(s)]


def reconstruction_models(s: dict) -> list[str]:
    chosen = s.get("reconstruction", {}).get("defenses")
    return model_ids(s) if chosen is None else [m for m in model_ids(s) if m in chosen]


def role(d: dict) -> str:
    key = (bool(d.get("scrub")), d.get("dp_epsilon") is not None)
    return next(r for r, k in ROLES.items() if k == key)


def defense_roles(s: dict) -> dict[str, str]:
    """Defense id -> role (undefended / scrubbed / dp / dp_scrubbed); the first defense of each role."""
    out: dict[str, str] = {}
    for d in s["defenses"]:
        out.setdefault(role(d), d["id"])
    return {v: k for k, v in out.items()}


def record_config(s: dict, defense: str) -> dict:
    """The RecordTrainConfig of one defense: the shared finetune block, the defense's own batch size / lr / epsilon."""
    d = next(x for x in s["defenses"] if x["id"] == defense)
    cfg = dict(s["finetune"])
    for key in ("batch_size", "lr"):
        if key in d:
            cfg[key] = d[key]
    cfg["dp_epsilon"] = d.get("dp_epsilon")
    return cfg


FIGURES = (
    Figure("extraction_by_duplication", f"{PLOTS}:extraction_by_duplication",
           lambda s: [f"{OUT}/extraction_levels.csv"],
           "Extraction: the share of member full names that appear among the PERSON spans tagged in a target's "
           "samples and not in the base model's, per duplication level of the name in the training records (the "
           "number of records whose subject it is), per defense; error bars: Wilson 95% intervals over the level's "
           "names."),
    Figure("attacks", f"{PLOTS}:attacks", lambda s: [f"{OUT}/attacks.csv"],
           "Every attack on every model: extraction precision and recall over unique PII (the original code's "
           "mention-count recall in the table only), reconstruction top-1 accuracy of the top-1 completion baseline "
           "(TAB) and of the paper's sample-then-rank attack, and inference accuracy with C candidates per "
           "distractor pool (dotted: chance 1/C); the base model is the public model the targets were fine-tuned "
           "from. Error bars: Wilson 95% intervals."),
)


def claims_inputs(s: dict) -> dict:
    return {"scores": f"{OUT}/extraction_scores.csv", "levels": f"{OUT}/extraction_levels.csv",
            "attacks": f"{OUT}/attacks.csv", "defenses": f"{OUT}/defenses.csv"}


def claims_args(s: dict, config: dict) -> str:
    base = s["base"].get("label") or (s["base"].get("spec") if s["base"]["kind"] == "pretrained" else "tiny GPT-2")
    meta = {"roles": defense_roles(s), "defenses": defense_ids(s), "base": base, "source": s["data"]["source"],
            "dp_epsilon": {d["id"]: d.get("dp_epsilon") for d in s["defenses"]}}
    return f"--meta {shlex.quote(json.dumps(meta, sort_keys=True))}"


def artifacts(s: dict, config: dict) -> list[Artifact]:
    out = []
    if s["base"]["kind"] == "pretrained" and s["base"].get("spec", "").startswith("hub:"):
        out.append(Artifact("model", s["base"]["spec"], "pii_leakage base model"))
    if s["data"]["source"] == "echr":
        out.append(Artifact("dataset", s["data"]["dataset"], "pii_leakage records"))
    return out


def world_pools(s: dict) -> dict[str, int]:
    """Identities per pool in the configured world (mini): the candidate pools' sizes."""
    from experiments.pii_leakage.world import WorldConfig  # stdlib + faker-free dataclass

    w = WorldConfig.from_dict({"seed": s["seed"], **s["data"].get("world", {})})
    return {"member": len(w.duplication) * w.members_per_level, "nonmember": w.n_nonmembers}


def check_config(s: dict, config: dict) -> None:
    ids = defense_ids(s)
    if BASE in ids:
        raise ValueError(f"pii_leakage.defenses: {BASE!r} is the base model's id; name the defense otherwise")
    if "undefended" not in defense_roles(s).values():
        raise ValueError("pii_leakage.defenses: one defense must be undefended (scrub false, dp_epsilon null): "
                         "every claim compares with it")
    b, data = s["base"], s["data"]
    if b["kind"] == "tiny":
        if not b.get("shape") or not b.get("train"):
            raise ValueError("pii_leakage.base kind tiny needs shape and train")
        if data["source"] != "world":
            raise ValueError("pii_leakage.base kind tiny is pre-trained on the world's public corpus: "
                             "data.source world")
    elif not b.get("spec"):
        raise ValueError("pii_leakage.base kind pretrained needs spec (e.g. hub:gpt2)")
    if data["source"] == "echr" and not data.get("dataset"):
        raise ValueError("pii_leakage.data.source echr needs data.dataset (e.g. AUEB-NLP/ecthr_cases)")
    chosen = s.get("reconstruction", {}).get("defenses")
    if chosen is not None and not set(chosen) <= set(model_ids(s)):
        raise ValueError(f"pii_leakage.reconstruction.defenses {sorted(set(chosen) - set(model_ids(s)))} are not "
                         f"models ({model_ids(s)})")
    if data["source"] == "world":
        pools = world_pools(s)
        for pool in s["inference"]["pools"]:
            if max(s["inference"]["sizes"]) > pools[pool]:
                raise ValueError(f"pii_leakage.inference.sizes: C = {max(s['inference']['sizes'])} candidates need "
                                 f"as many {pool} identities; the world has {pools[pool]}")


def with_seed(s: dict, seed: int) -> dict:
    """The base and every target use training seed `seed`; the world, the samples and the candidate draws stay
    fixed, so runs differ only in training noise."""
    return {"train_seed": int(seed)}


MANIFEST = Manifest(
    result="pii_leakage",
    title="PII leakage: extraction, reconstruction and inference on fine-tuned GPT-2",
    paper="Lukas et al. 2023, \"Analyzing Leakage of Personally Identifiable Information in Language Models\" "
          "(IEEE S&P; arXiv 2302.00539)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    artifacts=artifacts,
    check_config=check_config,
    with_seed=with_seed,
    smoke="experiments.pii_leakage.smoke",
)
