"""Anisotropy across languages and contrastive search (Su & Collier, TMLR 2023): what the shared code needs to know."""
from __future__ import annotations

import json
import shlex

from experiments.anisotropy import external
from experiments.manifest import Figure, Manifest

OUT = "results/anisotropy"
RES = "resources/anisotropy"
PLOTS = "experiments.anisotropy.plots"


def tiny_model_id(lang: str) -> str:
    return f"tiny_gpt2_{lang}"


def tiny_model_dir(lang: str) -> str:
    return f"{RES}/models/{lang}"


def available_tiny_languages(s: dict) -> list[str]:
    """The tiny languages whose fortunes package is installed (the others get 'not run: missing data' rows)."""
    langs = s.get("tiny", {}).get("languages", [])
    if not langs or s["texts"]["source"] != "fortunes":
        return []
    from experiments.data.fortunes import probe_language  # numpy only; a file listing, no text is read

    return [lang for lang in langs if probe_language(lang).available]


FIGURES = (
    Figure("isotropy_by_language", f"{PLOTS}:isotropy_by_language", lambda s: [f"{OUT}/isotropy_final.csv"],
           "Isotropy (1 - pooled self-similarity: the sum over texts of the cosines between all pairs of distinct "
           "token positions, divided by the number of such pairs, as the paper's code computes it) of the last "
           "layer after the final norm, per language and model, position 0 included; error bars: 95% bootstrap CIs "
           "over texts. Models: SmolLM2-135M-Instruct (a real pretrained LM, not GPT-2), tiny GPT-2s trained "
           "here on one language each, and their random-init twins (same build and seed, no training). Crosses: "
           "the per-sequence mean instead of the pooled ratio. Dashed line: 0.5, the claims' anisotropy "
           "threshold. Texts: Debian fortunes, cut to the configured token length."),
    Figure("isotropy_by_depth", f"{PLOTS}:isotropy_by_depth", lambda s: [f"{OUT}/isotropy.csv"],
           "Isotropy (pooled, as in the paper) by depth: the residual stream entering each block (0 = embeddings), "
           "the final residual, and the last layer after the final norm (the paper's layer, rightmost point), per "
           "model and language; solid: all positions, dashed: position 0 left out of the pairs; shaded: 95% "
           "bootstrap CIs over texts (all positions)."),
    Figure("decoding", f"{PLOTS}:decoding", lambda s: [f"{OUT}/decoding.csv"],
           "Decoding comparison on held-out prefixes: diversity (100 x product over n = 2, 3, 4 of the share of "
           "unique n-grams, SimCTG's definition) against coherence (mean log-probability per continuation token "
           "under the scoring model named in the axis label, not the generator), per method, with 95% bootstrap "
           "CIs over prefixes; the samplers pool their 3 seeds. The human continuations of the same prefixes give "
           "the diversity reference (vertical line) and their own coherence; human_other_prefix scores each human "
           "continuation after another prefix (the scorer must rank it lower: the claim's premise)."),
)


def claims_inputs(s: dict) -> dict:
    inputs = {"isotropy": f"{OUT}/isotropy_final.csv"}
    if s.get("decoding"):
        inputs.update(decoding=f"{OUT}/decoding.csv", per_prompt=f"{OUT}/decoding_per_prompt.csv")
    return inputs


def claims_args(s: dict, config: dict) -> str:
    models = {m["id"]: {"label": m["label"], "paper_id": m.get("paper_id"), "langs": m["langs"],
                        "group": m.get("group", "paper")} for m in s["models"]}
    args = f"--models {shlex.quote(json.dumps(models, sort_keys=True))}"
    if s.get("decoding"):
        samplers = [m["id"] for m in s["decoding"]["methods"] if m["kind"] == "sample"]
        cs = [m["id"] for m in s["decoding"]["methods"] if m["kind"] == "contrastive"]
        args += f" --samplers {' '.join(samplers)} --contrastive {cs[0]}"
    return args


def with_seed(s: dict, seed: int) -> dict:
    """The tiny GPT-2s (and through them the coherence scorer at mini) use training seed `seed`; text samples,
    generation and bootstrap seeds stay fixed, so runs differ only in training noise."""
    return {"train_seed": int(seed)} if s.get("tiny", {}).get("languages") else {}


def check_config(s: dict, config: dict) -> None:
    langs = set(s["texts"]["languages"])
    for m in s["models"]:
        if not set(m["langs"]) <= langs:
            raise ValueError(f"anisotropy.models {m['id']}: languages {sorted(set(m['langs']) - langs)} are not "
                             "in anisotropy.texts.languages")
    tiny = s.get("tiny", {}).get("languages", [])
    if tiny and s["texts"]["source"] != "fortunes":
        raise ValueError("anisotropy.tiny.languages needs texts.source fortunes (their training corpus)")
    if not set(tiny) <= langs:
        raise ValueError(f"anisotropy.tiny.languages {sorted(set(tiny) - langs)} not in texts.languages")
    if s["texts"]["source"] == "wit" and not s["texts"].get("path"):
        raise ValueError("anisotropy.texts.source wit needs texts.path (wit_test_set.json)")
    d = s.get("decoding")
    if d:
        if d["generator"]["spec"] == d["scorer"]["spec"]:
            raise ValueError("anisotropy.decoding: the coherence scorer must not be the generator (paper: OPT "
                             "scores GPT-2's text)")
        kinds = [m["kind"] for m in d["methods"]]
        if kinds.count("contrastive") != 1 or "sample" not in kinds:
            raise ValueError("anisotropy.decoding.methods: exactly one contrastive method and >= 1 sampler")
        if d["prompts_source"] == "texts" and d["prompts_lang"] not in langs:
            raise ValueError(f"anisotropy.decoding.prompts_lang {d['prompts_lang']!r} not in texts.languages")
        if d["prompts_source"] == "webtext" and not d.get("webtext_path"):
            raise ValueError("anisotropy.decoding.prompts_source webtext needs decoding.webtext_path")
        if d["prompts_source"] == "texts" and s["texts"]["n_prompts"] < d["n_prompts"]:
            raise ValueError("anisotropy: texts.n_prompts (candidates) must be >= decoding.n_prompts")
        built = {f"dir:{tiny_model_dir(lang)}": lang for lang in tiny}
        for role in ("generator", "scorer"):
            lang = built.get(d[role]["spec"])
            if lang is not None and lang not in available_tiny_languages(s):
                from experiments.data.fortunes import probe_language

                pkgs = probe_language(lang).packages
                raise ValueError(f"anisotropy.decoding.{role} is the tiny GPT-2 trained on the {lang} fortunes, "
                                 f"which cannot be built: Debian package {' / '.join(pkgs)} is not installed "
                                 f"(apt-get install {pkgs[0]}; `make setup` does, as root), or name another "
                                 f"{role}")


MANIFEST = Manifest(
    result="anisotropy",
    title="Anisotropy across languages and contrastive search",
    paper="Su & Collier 2023, \"Contrastive Search Is What You Need For Neural Text Generation\" (TMLR; "
          "arXiv 2210.14140)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    artifacts=external.artifacts,
    gpu_jobs=external.gpu_jobs,
    check_config=check_config,
    with_seed=with_seed,
)
