"""One figure style for every result, and atomic PNG + PDF saving."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


def new_figure(width: float = 6.0, height: float = 4.0, **kwargs):
    plt.rcParams.update(STYLE)
    return plt.subplots(figsize=(width, height), **kwargs)


def save_figure(fig, out_png: str | Path) -> None:
    """Write `out_png` and the same figure as PDF beside it, each atomically."""
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    for path in (out_png, out_png.with_suffix(".pdf")):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
        os.close(fd)
        try:
            fig.savefig(tmp, bbox_inches="tight")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    plt.close(fig)
