"""A dummy result: the plug-in contract of a result, exercised by tests/workflow/test_plugin.py."""
from experiments.manifest import Artifact, Figure, Manifest

OUT = "results/dummy_result"

MANIFEST = Manifest(
    result="dummy_result",
    title="A dummy result",
    paper="nobody 2026",
    figures=(Figure("values", "experiments.dummy_result.plots:values", lambda s: [f"{OUT}/values.csv"],
                    "The dummy values."),),
    claims_inputs=lambda s: {"values": f"{OUT}/values.csv"},
    artifacts=lambda s, config: [Artifact("model", s["hub_model"], "dummy_result model")] if s["hub_model"] else [],
)
