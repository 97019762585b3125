"""The local Hugging Face cache: where it is, whether the process is offline, and how to fill it.

Read at call time (huggingface_hub reads these variables once at import), so a changed environment (tests,
CLIs) is honoured; every hub call is given the resulting cache directory explicitly. Shared by model loading
(experiments.lm) and dataset loading (experiments.data), which therefore do not import each other.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["hf_cache_description", "hf_home", "hf_hub_cache", "hf_offline", "hub_cached_file", "hub_download_hint"]


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


def hub_cached_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """Path of ``filename`` in the local cache for ``repo_id@revision``, or None. Never uses the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        repo_id, filename, cache_dir=hf_hub_cache(), revision=revision or "main", repo_type="model"
    )
    return Path(found) if isinstance(found, str) else None
