"""make robustness: run naming, the seed overlay from manifests, and the flip detection of the verdict table."""
import pandas as pd
import pytest

from experiments import robustness as rb


def claims_csv(tmp_path, name, verdicts, model="w64_l2_s0"):
    df = pd.DataFrame({"result": "demo", "claim_id": [f"c{i}" for i in range(len(verdicts))], "model": model,
                       "verdict": verdicts, "our_value": [0.1 * i for i in range(len(verdicts))],
                       "ci_low": None, "ci_high": None})
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


def test_run_names():
    assert rb.parse_run("seed2") == (2, "default")
    assert rb.parse_run("avx2") == (0, "avx2") and rb.parse_run("nosimd") == (0, "nosimd")
    assert rb.resolve_run("seed1") == "seed1" and rb.resolve_run("kernels") in ("avx2", "nosimd")
    with pytest.raises(ValueError):
        rb.parse_run("fast")


def test_stable_verdicts_and_seed_suffix_alignment(tmp_path):
    paths = {"seed0": claims_csv(tmp_path, "seed0", ["reproduced", "not_reproduced"]),
             "seed1": claims_csv(tmp_path, "seed1", ["reproduced", "not_reproduced"], model="w64_l2_s1")}
    wide, flips = rb.summary(rb.table(paths))
    assert flips == [] and list(wide["stable"]) == ["yes", "yes"]
    assert set(wide["model"]) == {"w64_l2_s*"}  # the seed suffix does not split a claim into two rows


def test_a_flip_is_reported(tmp_path):
    paths = {"seed0": claims_csv(tmp_path, "seed0", ["reproduced", "not_reproduced"]),
             "avx2": claims_csv(tmp_path, "avx2", ["reproduced", "reproduced"])}
    wide, flips = rb.summary(rb.table(paths))
    assert list(wide["stable"]) == ["yes", "FLIP"] and len(flips) == 1 and "c1" in flips[0]
    assert "**Flips:**" in rb.markdown(wide, flips, {"seed0": 1.0, "avx2": 2.0})


def test_a_claim_missing_in_one_run_is_not_stable(tmp_path):
    paths = {"seed0": claims_csv(tmp_path, "seed0", ["reproduced", "not_reproduced"]),
             "seed1": claims_csv(tmp_path, "seed1", ["reproduced"])}
    wide, flips = rb.summary(rb.table(paths))
    assert list(wide["stable"]) == ["yes", "MISSING"] and len(flips) == 1


def test_overlay_uses_each_manifest(monkeypatch):
    class M:
        def __init__(self, part):
            self.with_seed = lambda section, seed: part(seed)

    manifests = {"a": M(lambda s: {"seed": s}), "b": M(lambda s: {})}
    monkeypatch.setattr(rb, "load_manifest", lambda r: manifests[r])
    assert rb.overlay({"results": ["a", "b"], "a": {}, "b": {}}, 3) == {"a": {"seed": 3}}
    assert rb.deep_merge({"a": {"x": 1, "y": [1]}}, {"a": {"y": [2]}}) == {"a": {"x": 1, "y": [2]}}


def test_dag_command_keeps_the_target_out_of_the_configfiles(tmp_path):
    """snakemake's own parser reads the command: the claims target, and exactly the two config files."""
    from snakemake.cli import get_argument_parser

    cmd = rb.dag_command("2", tmp_path, [tmp_path / "config.yaml", tmp_path / "overlay.yaml"])
    args = get_argument_parser().parse_args(cmd[3:])
    assert list(args.targets) == ["results/claims.csv"]
    assert [str(p) for p in args.configfile] == [str(tmp_path / "config.yaml"), str(tmp_path / "overlay.yaml")]
    assert str(args.directory) == str(tmp_path)


def test_dag_command_passes_rerun_triggers(tmp_path):
    from snakemake.cli import get_argument_parser

    cmd = rb.dag_command("2", tmp_path, [tmp_path / "config.yaml"], ["mtime"])
    args = get_argument_parser().parse_args(cmd[3:])
    assert list(args.targets) == ["results/claims.csv"] and [str(p) for p in args.configfile] == [
        str(tmp_path / "config.yaml")]
    assert {t.name for t in args.rerun_triggers} == {"MTIME"}
    plain = get_argument_parser().parse_args(rb.dag_command("2", tmp_path)[3:])
    assert "CODE" in {t.name for t in plain.rerun_triggers}  # snakemake's default: code changes rerun jobs
