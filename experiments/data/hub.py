"""Text datasets from the Hugging Face hub, read from the local cache.

Datasets are fetched explicitly, once, into the hub cache
(``hf download <id> --repo-type dataset``), and the pipeline reads them from
that snapshot directory.  :func:`check_dataset_available` only looks at the
cache (no network, no ``datasets`` import), so a pre-flight rule can fail
early with one message per missing dataset.

The optional ``datasets`` library (``pip install -e .[hub]``) is imported
lazily, only by :func:`load_hub_text`.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Sequence
from pathlib import Path

from experiments.errors import MissingArtifactError
from experiments.hfcache import hf_cache_description, hf_hub_cache, hf_offline, hub_download_hint

__all__ = ["check_dataset_available", "cached_dataset_snapshot", "load_hub_rows", "load_hub_text"]

_SHA = re.compile(r"^[0-9a-f]{40}$")


def cached_dataset_snapshot(dataset_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot directory of a hub dataset at ``revision`` (default ``main``), or None.

    Follows the huggingface_hub cache layout
    ``<cache>/datasets--<org>--<name>/{refs/<revision>, snapshots/<sha>/}``; a
    40-hex ``revision`` is taken as a commit sha directly.  Reads the
    environment (``HF_HUB_CACHE`` / ``HF_HOME``) at call time; never uses the network.
    """
    repo = hf_hub_cache() / ("datasets--" + dataset_id.replace("/", "--"))
    rev = revision or "main"
    if _SHA.match(rev):
        commit = rev
    else:
        ref = repo / "refs" / rev
        if not ref.is_file():
            return None
        commit = ref.read_text().strip()
    snapshot = repo / "snapshots" / commit
    if not snapshot.is_dir() or not any(snapshot.iterdir()):
        return None
    return snapshot


def _require_datasets() -> None:
    if importlib.util.find_spec("datasets") is None:
        raise MissingArtifactError(
            "Python package 'datasets' (needed to read hub datasets)",
            "Install the hub extra into this environment with: pip install -e .[hub]",
            detail="it is not installed",
        )


def check_dataset_available(
    dataset_id: str, revision: str | None = None, *, require_library: bool = True
) -> Path:
    """Check that a hub dataset is in the local cache; inspects the cache only, never the network.

    Args:
        dataset_id: e.g. ``"roneneldan/TinyStories"``.
        revision: branch, tag or commit sha (default ``main``).
        require_library: also check (without importing it) that the
            ``datasets`` package is installed, since loading needs it.

    Returns:
        The snapshot directory.

    Raises:
        MissingArtifactError: naming the dataset and the download command
            (``hf download <id> --repo-type dataset``, equivalently
            ``huggingface-cli download <id> --repo-type dataset``), or naming
            the missing ``datasets`` package.
    """
    snapshot = cached_dataset_snapshot(dataset_id, revision)
    if snapshot is None:
        raise MissingArtifactError(
            f"hub dataset {dataset_id!r} (revision {revision or 'main'})",
            hub_download_hint(dataset_id, revision, repo_type="dataset"),
            detail=f"not in the {hf_cache_description()}",
        )
    if require_library:
        _require_datasets()
    return snapshot


def _open_split(dataset_id, split, revision, config_name, data_files, streaming):
    """One split of a hub dataset: from the local snapshot if cached, else (online only) from the hub."""
    snapshot = cached_dataset_snapshot(dataset_id, revision)
    if snapshot is None and hf_offline():
        check_dataset_available(dataset_id, revision)  # raises with the download hint
    _require_datasets()
    import datasets

    kwargs: dict = {"name": config_name, "data_files": data_files, "split": split, "streaming": streaming}
    if snapshot is not None:
        return datasets.load_dataset(str(snapshot), **kwargs)
    return datasets.load_dataset(dataset_id, revision=revision, **kwargs)


def load_hub_rows(
    dataset_id: str,
    split: str,
    *,
    revision: str | None = None,
    config_name: str | None = None,
    data_files: str | Sequence[str] | dict[str, str | Sequence[str]] | None = None,
    columns: Sequence[str] = (),
    limit: int | None = None,
) -> list[dict]:
    """The rows of one split of a hub dataset as dicts (cache, offline and `limit` as in load_hub_text).

    columns: those every row must have (ValueError naming the dataset's columns otherwise)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    ds = _open_split(dataset_id, split, revision, config_name, data_files, limit is not None)
    have = ds.column_names
    missing = [c for c in columns if have is not None and c not in have]
    if missing:
        raise ValueError(f"dataset {dataset_id!r} split {split!r} has no column {missing}; columns: {have}")
    rows = ds if limit is None else itertools.islice(ds, limit)
    return [dict(r) for r in rows]


def load_hub_text(
    dataset_id: str,
    split: str,
    *,
    revision: str | None = None,
    text_field: str = "text",
    config_name: str | None = None,
    data_files: str | Sequence[str] | dict[str, str | Sequence[str]] | None = None,
    limit: int | None = None,
) -> list[str]:
    """Return the ``text_field`` column of one split of a hub dataset as a list of strings.

    If the dataset is in the local hub cache, it is loaded from that snapshot
    directory (works offline; ``data_files`` are then relative to the
    snapshot).  Otherwise, when offline (``HF_HUB_OFFLINE=1``), a
    :class:`MissingArtifactError` is raised; when online, ``datasets``
    downloads it as usual.

    Args:
        dataset_id: hub id, e.g. ``"Salesforce/wikitext"``.
        split: split name, e.g. ``"train"``, ``"validation"``.
        revision: branch, tag or commit sha (default ``main``).
        text_field: the column holding the text.
        config_name: dataset configuration (``name=`` of ``load_dataset``).
        data_files: restrict to these files (``data_files=`` of ``load_dataset``).
        limit: keep only the first ``limit`` rows (in file order).  The split
            is then *streamed*, so a huge dataset is not converted to Arrow
            just to read its head.

    Raises:
        MissingArtifactError: dataset not cached while offline, or ``datasets``
            not installed.
        ValueError: ``text_field`` is not a column, or a value is not a string.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    ds = _open_split(dataset_id, split, revision, config_name, data_files, limit is not None)
    columns = ds.column_names
    if columns is not None and text_field not in columns:
        raise ValueError(f"dataset {dataset_id!r} split {split!r} has no column {text_field!r}; columns: {columns}")
    if limit is None:
        texts = ds[text_field]
    else:
        texts = [row[text_field] for row in itertools.islice(ds, limit)]
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"dataset {dataset_id!r} row {bad}: {text_field!r} is {type(texts[bad]).__name__}, not str")
    return texts
