"""The one exception type the pipeline raises for missing models, datasets and packages.

Every "is this artifact here?" check (``experiments.lm.load.check_available``,
``experiments.data.hub.check_dataset_available``, ...) raises
:class:`MissingArtifactError`, so a pre-flight rule can catch exactly one class
and print one line per missing artifact before any compute starts.
"""

from __future__ import annotations


class MissingArtifactError(RuntimeError):
    """A model, dataset, file or package the run needs is not available locally.

    The message always names the artifact and says how to get it.

    Attributes:
        artifact: short human-readable name of what is missing
            (e.g. ``"hub model 'gpt2' (revision main)"``).
        hint: how to obtain it (a shell command or the pipeline rule to run).
    """

    def __init__(self, artifact: str, hint: str, detail: str | None = None):
        self.artifact = artifact
        self.hint = hint
        self.detail = detail
        message = f"missing {artifact}"
        if detail:
            message += f": {detail}"
        message += f". {hint}"
        super().__init__(message)
