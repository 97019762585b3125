"""Which external artifacts a config needs, and whether each is in the local HF cache (no network).

Lists every hub model (tokenizers, released checkpoints, judges) and hub dataset named in the config,
checks each one with the same checks the rules run before any compute, prints one line per artifact,
and exits 1 with the full list of what is missing and how to get it.

CLI: python -m experiments.check_paper --config config/paper.yaml
"""
from __future__ import annotations

import argparse
import sys

import yaml

from experiments.data.hub import check_dataset_available
from experiments.lm.errors import MissingArtifactError
from experiments.lm.load import check_available


def artifacts(cfg: dict) -> list[tuple[str, str, str]]:
    """(kind, name, used by) for every external model and dataset the config names."""
    out = []
    ts = cfg.get("tinystories") if "tinystories" in cfg.get("results", []) else None
    if ts:
        if ts["data"]["source"] == "hub":
            rev = ts["data"].get("hub_revision")
            out.append(("dataset", ts["data"]["hub_dataset"] + (f"@{rev}" if rev else ""), "tinystories corpus"))
        if ts["tokenizer"]["kind"] == "pretrained":
            out.append(("model", ts["tokenizer"]["pretrained"], "tinystories tokenizer"))
        out += [("model", spec, "tinystories released checkpoints") for spec in ts.get("released_models", [])]
        if ts["judge"].get("kind") == "hf_local":
            out.append(("model", ts["judge"]["model"], "tinystories judge"))
    lnr = cfg.get("ln_removal") if "ln_removal" in cfg.get("results", []) else None
    if lnr:
        out += [("model", m["spec"], f"ln_removal base model {m['id']}") for m in lnr["models"]
                if m["spec"].startswith("hub:")]
        data = lnr.get("data", {})
        if data.get("hub_dataset") and not data.get("train", "").startswith("resources/tinystories"):
            rev = data.get("hub_revision")
            out.append(("dataset", data["hub_dataset"] + (f"@{rev}" if rev else ""), "ln_removal fine-tuning text"))
            if data.get("tokenizer"):
                out.append(("model", data["tokenizer"], "ln_removal tokenizer"))
    return out


def check(kind: str, name: str) -> str | None:
    try:
        if kind == "model":
            check_available(name)
        else:
            dataset, _, rev = name.partition("@")
            check_dataset_available(dataset, rev or None)
    except MissingArtifactError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(open(args.config))
    missing = []
    for kind, name, used_by in artifacts(cfg):
        problem = check(kind, name)
        print(f"{'ok     ' if problem is None else 'MISSING'} {kind:7s} {name}  ({used_by})")
        if problem:
            missing.append(problem)
    if missing:
        print(f"\n{len(missing)} artifact(s) missing:\n" + "\n".join(f"- {m}" for m in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
