"""A result is a plug-in: a dummy result added as its package, its .smk and its schema section (nothing else)
runs through the whole workflow (step -> generic figure and claims rules -> claims table -> report), and the
shared tools (check_paper's artifact list and the onstart check) see it through its manifest."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DUMMY = Path(__file__).parent / "dummy_result"
SKIP = {".git", ".venv", ".snakemake", "results", "resources", "logs", "robustness", "__pycache__", ".pytest_cache"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the working tree plus the dummy result in exactly its three places."""
    dst = tmp_path_factory.mktemp("plugin") / "repo"
    shutil.copytree(ROOT, dst, ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")])
    shutil.copytree(DUMMY / "package", dst / "experiments" / "dummy_result")
    shutil.copy(DUMMY / "dummy_result.smk", dst / "workflow" / "rules" / "dummy_result.smk")
    shutil.copy(DUMMY / "dummy_result.yaml", dst / "config" / "schemas" / "dummy_result.yaml")
    return dst


def snakemake(repo, *args, config=None):
    cfg = repo / "dummy.yaml"
    cfg.write_text(yaml.safe_dump({"results": ["dummy_result"], "dummy_result": config or {}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(repo),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # rules call `python`
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(cfg), *args],
                          cwd=repo, capture_output=True, text=True, env=env, timeout=300)


def test_dummy_result_runs_end_to_end(repo):
    r = snakemake(repo, config={"n": 3})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    claims = pd.read_csv(repo / "results" / "claims.csv")
    assert list(claims["claim_id"]) == ["mean_high"] and list(claims["verdict"]) == ["reproduced"]
    sanity = pd.read_csv(repo / "results" / "sanity_checks.csv")
    assert list(sanity["check_id"]) == ["count"] and bool(sanity["passed"].iloc[0])
    report = (repo / "results" / "report.md").read_text()
    assert "## A dummy result" in report and "The dummy section." in report and "dummy_result__values.png" in report
    assert (repo / "results" / "figures" / "dummy_result__values.png").stat().st_size > 0


def test_dummy_result_minimum_n_and_defaults_from_its_schema(repo):
    r = snakemake(repo, "--forceall", config={"n": 1})  # below the claim's min_n = 2; min_mean from the schema
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    claims = pd.read_csv(repo / "results" / "claims.csv")
    assert list(claims["verdict"]) == ["not_testable_at_scale"] and "below the minimum 2" in claims["notes"].iloc[0]


def test_dummy_result_schema_and_artifacts(repo):
    r = snakemake(repo, "-n", config={"n": 3, "typo": 1})
    assert r.returncode != 0 and "typo" in r.stdout + r.stderr
    r = snakemake(repo, config={"n": 3, "hub_model": "hub:nobody-xyz/dummy-model"})
    assert r.returncode != 0 and "nobody-xyz/dummy-model" in r.stdout + r.stderr  # onstart: missing artifact
    out = subprocess.run([sys.executable, "-c", "import yaml; from experiments.check_paper import artifacts; "
                          "print(artifacts({'results': ['dummy_result'], 'dummy_result': "
                          "{'n': 1, 'hub_model': 'hub:nobody-xyz/dummy-model'}}))"],
                         cwd=repo, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    assert "hub:nobody-xyz/dummy-model" in out.stdout, out.stderr
