"""Load a model from its spec (experiments.lm.spec), check availability without the network, count parameters.

Every check raises :class:`~experiments.errors.MissingArtifactError` with a message naming the artifact and how
to get it, so a pre-flight rule can fail before any compute. torch and transformers are imported lazily so that
importing this module stays cheap.

CLI: python -m experiments.lm.load --spec hub:gpt2 [--spec ...] [--no-tokenizer]   (availability only)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.errors import MissingArtifactError
from experiments.hfcache import hf_cache_description, hf_hub_cache, hf_offline, hub_cached_file, hub_download_hint
from experiments.lm.gguf import convert_hint, gguf_path, read_provenance
from experiments.lm.spec import ModelSpec, parse_spec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["check_available", "load_model", "param_count", "resolve_dtype"]

# Weight files transformers can load, in its order of preference.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Any one of these means a tokenizer was saved.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "tokenizer_config.json")


def _missing_model_files(lookup: Callable[[str], Path | None], *, require_tokenizer: bool) -> list[str]:
    """Which of config / weights / tokenizer ``lookup(filename) -> Path | None`` cannot find."""
    missing: list[str] = []
    if lookup("config.json") is None:
        missing.append("config.json")
    weights = next(((name, p) for name in WEIGHT_FILES if (p := lookup(name)) is not None), None)
    if weights is None:
        missing.append("weights (" + " / ".join(WEIGHT_FILES) + ")")
    elif weights[0].endswith(".index.json"):
        try:
            shards = sorted(set(json.loads(weights[1].read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError) as exc:
            missing.append(f"readable {weights[0]} ({exc})")
        else:
            missing.extend(f"weight shard {s}" for s in shards if lookup(s) is None)
    if require_tokenizer and all(lookup(name) is None for name in TOKENIZER_FILES):
        missing.append("tokenizer (" + " / ".join(TOKENIZER_FILES) + ")")
    return missing


def check_available(spec: str | ModelSpec, *, require_tokenizer: bool = True) -> None:
    """Check that ``spec`` can be loaded without downloading anything; never touches the network.

    * ``hub``: ``config.json``, weights (and a tokenizer) are in the local HF
      cache (``$HF_HUB_CACHE`` / ``$HF_HOME``, read at call time) for the
      requested revision (``main`` when none is given).
    * ``dir``: the directory has ``config.json``, weights (and a tokenizer).
    * ``gguf``: the package is installed and ships the file.  (Whether it has
      been converted yet is the concern of :func:`load_model`.)

    Raises:
        MissingArtifactError: naming the artifact and how to get it.
        ValueError: for a malformed spec string.
    """
    spec = parse_spec(spec)
    if spec.kind == "hub":
        missing = _missing_model_files(
            lambda name: hub_cached_file(spec.target, name, spec.revision), require_tokenizer=require_tokenizer
        )
        if missing:
            nothing_cached = len(missing) == (3 if require_tokenizer else 2) and missing[0] == "config.json"
            raise MissingArtifactError(
                f"hub model {spec.target!r} (revision {spec.revision or 'main'})",
                hub_download_hint(spec.target, spec.revision),
                detail=f"not in the {hf_cache_description()}"
                + ("" if nothing_cached else f"; incomplete download, missing: {', '.join(missing)}"),
            )
    elif spec.kind == "dir":
        path = Path(spec.target).expanduser()
        hint = (
            "Produce it with the pipeline rule that writes it (e.g. `python -m experiments.lm.gguf "
            f"--spec gguf:<package>/<file.gguf> --out {spec.target}` for a converted GGUF)"
        )
        if not path.is_dir():
            raise MissingArtifactError(f"model directory {str(path)!r}", hint, detail="it does not exist")

        def lookup(name: str) -> Path | None:
            return path / name if (path / name).is_file() else None

        missing = _missing_model_files(lookup, require_tokenizer=require_tokenizer)
        if missing:
            raise MissingArtifactError(
                f"model directory {str(path)!r}", hint, detail=f"incomplete; missing: {', '.join(missing)}"
            )
    else:
        gguf_path(spec)


# --------------------------------------------------------------------------- loading


def resolve_dtype(dtype: Any) -> Any:
    """Map ``None``/str/torch.dtype to what ``from_pretrained(dtype=...)`` expects.

    ``None`` means float32 (storage dtype on disk does not change compute dtype);
    ``"auto"`` keeps the checkpoint's dtype.
    """
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str):
        name = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}.get(dtype, dtype)
        resolved = getattr(torch, name, None)
        if isinstance(resolved, torch.dtype):
            return resolved
    raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16', 'float16', 'auto' or a torch.dtype")


def load_model(
    spec: str | ModelSpec,
    *,
    dtype: Any = None,
    device: Any = None,
    attn_implementation: str | None = "eager",
    converted_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a spec; the model is returned in eval mode.

    Args:
        spec: spec string or :class:`ModelSpec`.
        dtype: compute dtype. ``None`` (default) = float32 whatever the storage
            dtype; ``"auto"`` = the checkpoint's dtype; or a name / torch.dtype.
        device: if given, the model is moved there (``"cuda"``, ``"cpu"``, ...).
        attn_implementation: passed to ``from_pretrained`` (default ``"eager"``
            for bit-reproducible, backend-independent attention).
        converted_dir: for ``gguf`` specs, the directory written by
            :func:`convert_gguf`; required (a GGUF is never dequantised on load).
        offline: load hub models from the local cache only.  ``None`` (default)
            follows ``HF_HUB_OFFLINE``.  When offline, availability is checked
            first so a missing model raises :class:`MissingArtifactError`.

    Tokenizer: if it has no pad token, the EOS token is used (and copied to
    ``model.generation_config.pad_token_id``).  ``padding_side`` is left as the
    checkpoint has it; callers that batch generation set it themselves.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = parse_spec(spec)
    offline = hf_offline() if offline is None else offline
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype)}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation

    if spec.kind == "gguf":
        if converted_dir is None:
            raise MissingArtifactError(
                f"converted model for {spec}",
                convert_hint(spec),
                detail="GGUF files are not dequantised at load time (it takes ~20 s); no converted_dir was given",
            )
        gguf_file = gguf_path(spec)
        prov = read_provenance(Path(converted_dir))
        if prov is None or prov.get("gguf_file") != spec.filename or prov.get("package") != spec.target:
            raise MissingArtifactError(
                f"converted model for {spec} in {str(converted_dir)!r}",
                convert_hint(spec, converted_dir),
                detail="the directory is missing or its provenance.json does not name this GGUF",
            )
        if prov.get("gguf_size") not in (None, gguf_file.stat().st_size):
            raise MissingArtifactError(
                f"up-to-date converted model for {spec} in {str(converted_dir)!r}",
                convert_hint(spec, converted_dir) + " (with --overwrite)",
                detail="the installed GGUF differs from the one that was converted",
            )
        spec = ModelSpec("dir", str(converted_dir))

    if spec.kind == "dir":
        check_available(spec)
        source: str = str(Path(spec.target).expanduser())
        hub_kwargs: dict[str, Any] = {}
    else:
        if offline:
            check_available(spec)
        source = spec.target
        hub_kwargs = {"revision": spec.revision, "cache_dir": str(hf_hub_cache()), "local_files_only": offline}

    model = AutoModelForCausalLM.from_pretrained(source, **kwargs, **hub_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer of {spec} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    gen_cfg = getattr(model, "generation_config", None)
    if gen_cfg is not None and gen_cfg.pad_token_id is None:
        gen_cfg.pad_token_id = tokenizer.pad_token_id
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer


def param_count(model: torch.nn.Module, exclude_embeddings: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once).

    With ``exclude_embeddings=True`` the token and position embedding tables
    (every ``nn.Embedding``) and the output projection (``get_output_embeddings()``,
    usually tied to the token embedding) are left out, i.e. the "non-embedding"
    count of Kaplan et al. (2020).
    """
    import torch

    excluded: set[int] = set()
    if exclude_embeddings:
        for module in model.modules():
            if isinstance(module, torch.nn.Embedding):
                excluded.update(id(p) for p in module.parameters(recurse=False))
        get_out = getattr(model, "get_output_embeddings", None)
        out = get_out() if callable(get_out) else None
        if out is not None:
            excluded.update(id(p) for p in out.parameters(recurse=False))
    seen: set[int] = set()
    total = 0
    for p in model.parameters():  # parameters() already de-duplicates shared tensors
        if id(p) in excluded or id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def main(argv: list[str] | None = None) -> int:
    """Check that models are available locally (no network, no loading); exit 1 if one is missing."""
    parser = argparse.ArgumentParser(prog="python -m experiments.lm.load", description=main.__doc__)
    parser.add_argument("--spec", action="append", required=True, help="model spec; repeat for several")
    parser.add_argument("--no-tokenizer", action="store_true", help="do not require tokenizer files")
    args = parser.parse_args(argv)
    status = 0
    for text in args.spec:
        try:
            check_available(text, require_tokenizer=not args.no_tokenizer)
        except (MissingArtifactError, ValueError) as exc:
            print(f"MISSING {text}: {exc}")
            status = 1
        else:
            print(f"ok      {text}")
    return status


if __name__ == "__main__":
    sys.exit(main())
