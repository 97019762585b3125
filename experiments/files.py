"""Atomic file-writing helpers shared by every pipeline step.

A Snakemake job that dies half-way must never leave a half-written output that
looks complete.  Every helper here writes to a temporary sibling of the target
(same directory, hence same filesystem) and then renames it into place with
:func:`os.replace`, which is atomic on POSIX.  On failure the temporary is
removed and the target is left untouched.

Temporary names start with ``.`` and contain ``.tmp`` so that a crash that kills
the interpreter (no cleanup possible) leaves only obviously-stale hidden files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "atomic_dir",
    "atomic_save_numpy",
    "atomic_save_torch",
    "atomic_write_csv",
    "atomic_write_text",
    "ensure_parent",
]


def ensure_parent(path: str | os.PathLike[str]) -> Path:
    """Create the parent directory of ``path`` if needed and return ``Path(path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _tmp_sibling(path: Path) -> Path:
    """Create (and close) an empty temporary file beside ``path``; return its path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it to ``path``."""
    target = ensure_parent(path)
    tmp = _tmp_sibling(target)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates files with mode 0600; give the output normal permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (temp file + rename). Returns the path."""
    with _atomic_file(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def _check_finite(
    df: pd.DataFrame,
    check_cols: Iterable[str] | None,
    allow_cols: Iterable[str],
) -> None:
    """Raise ValueError naming the first numeric column holding NaN/inf/NA."""
    import numpy as np
    import pandas as pd

    allowed = set(allow_cols)  # names absent from the frame are ignored (optional columns)
    if check_cols is None:
        cols = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    else:
        cols = list(check_cols)
        unknown = set(cols).difference(df.columns)
        if unknown:
            raise ValueError(f"check_finite_cols names columns not in the frame: {sorted(unknown)}")
    for col in cols:
        if col in allowed:
            continue
        series = df[col]
        if not pd.api.types.is_numeric_dtype(series):
            raise ValueError(f"column {col!r} was listed for the finiteness check but is not numeric")
        if pd.api.types.is_bool_dtype(series) and not series.isna().any():
            continue
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            first = series.index[int(np.argmax(bad))]
            raise ValueError(
                f"refusing to write non-finite values: column {col!r} has {int(bad.sum())} "
                f"NaN/inf/NA value(s) (first at index {first!r}); pass "
                f"allow_nan=[{col!r}] if that is intended"
            )


def atomic_write_csv(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    check_finite_cols: Iterable[str] | None = None,
    allow_nan: Iterable[str] = (),
    allow_nonfinite: Iterable[str] = (),
    index: bool = False,
    **to_csv_kwargs: Any,
) -> Path:
    """Write a DataFrame to CSV atomically, refusing NaN/inf in numeric columns.

    Args:
        df: the frame to write.
        path: destination ``.csv`` path (parent directories are created).
        check_finite_cols: columns that must be finite.  ``None`` (default)
            means *every numeric column* of ``df``; naming a non-numeric column
            is an error.
        allow_nan: columns exempt from the check (NaN/inf/NA allowed, e.g.
            an optional metric that is legitimately undefined).  Names not in
            ``df`` are ignored, so optional columns can be listed.
        allow_nonfinite: same as ``allow_nan`` (alias; the two are merged).
        index: write the index (default ``False``).
        **to_csv_kwargs: passed on to :meth:`pandas.DataFrame.to_csv`.

    Raises:
        ValueError: naming the offending column, before anything is written.
    """
    _check_finite(df, check_finite_cols, [*allow_nan, *allow_nonfinite])
    with _atomic_file(path) as tmp:
        df.to_csv(tmp, index=index, **to_csv_kwargs)
    return Path(path)


def atomic_save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj, path)`` atomically (temp file + rename). Returns the path."""
    import torch

    with _atomic_file(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_save_numpy(array: Any, path: str | os.PathLike[str]) -> Path:
    """``np.save(path, array)`` atomically (no pickles; ``path`` is used exactly, no ``.npy`` added)."""
    import numpy as np

    with _atomic_file(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory atomically.

    Yields a fresh temporary directory beside ``path``; fill it in the ``with``
    block.  On normal exit it is renamed to ``path``; if the block raises, the
    temporary directory is deleted and ``path`` is left as it was.

    Args:
        path: the final directory.
        overwrite: if ``path`` already exists, replace it on success (default;
            the old directory is moved aside and deleted only after the new one
            is in place, and is left untouched if the block fails).  With
            ``overwrite=False`` an existing ``path`` raises
            :class:`FileExistsError` (checked both before and after the block).

    Example::

        with atomic_dir("resources/models/foo") as tmp:
            model.save_pretrained(tmp)
    """
    target = ensure_parent(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 directories
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} appeared while it was being built")
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.replace(target, old / "d")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
