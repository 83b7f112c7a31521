"""What a Hugging Face user types in the first hour, on mindone_ft models: torch-style methods (`eval()`, `train()`,
`parameters()`, `named_parameters()`, `device`, `dtype`, `to()`, `requires_grad_()`, `state_dict()` /
`load_state_dict()`), numpy inputs straight from a tokenizer, `resize_token_embeddings`, `push_to_hub` (model and
Trainer, against mocks of huggingface_hub's upload calls only), and clear errors for torch-only methods.
"""

import os
import re
import types

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from huggingface_hub import HfApi
from test_modeling_bert import tiny_config, tiny_inputs, to_ms, to_torch

import mindone_ft
from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper
from mindone_ft.modeling_layers import Dropout, Embedding


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from mindone_ft.utils import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path())


def _cls_model(**kwargs):
    ms.set_seed(0)
    return mindone_ft.BertForSequenceClassification(tiny_config(num_labels=3, **kwargs))


def _dropouts(model):
    return [cell for _, cell in model.cells_and_names() if isinstance(cell, Dropout)]


# ---------------------------------------------------------------------------------------------- modes, parameters
def test_train_and_eval_return_the_model_and_switch_every_cell():
    model = _cls_model()
    assert model.eval() is model and not model.training
    assert not any(cell.training for cell in _dropouts(model))
    assert model.train() is model and model.training and all(cell.training for cell in _dropouts(model))
    assert model.train(False) is model and not model.training
    with pytest.raises(ValueError, match="boolean"):
        model.train("yes")


def test_train_step_wrapper_has_train_and_eval():
    """The seed tutorial calls `train_model.train()` on the train step."""
    model = _cls_model()
    step = TrainOneStepWrapper(ReturnLoss(model), AdamW(model.trainable_params()), scaler="none")
    assert step.train() is step and model.training and step.training
    assert step.eval() is step and not model.training


def test_parameters_and_named_parameters_are_torch_like():
    model = _cls_model()
    torch_model = transformers.BertForSequenceClassification(tiny_config(num_labels=3))
    named = model.named_parameters()
    assert isinstance(named, types.GeneratorType) and isinstance(model.parameters(), types.GeneratorType)
    assert [name for name, _ in named] == [name for name, _ in torch_model.named_parameters()]
    assert len(list(model.parameters())) == len(list(torch_model.parameters()))
    assert [n for n, _ in model.named_parameters(prefix="m", recurse=False)] == []
    # The base model is a model too (plain sub-Cells like `classifier` have MindSpore's `parameters_and_names`).
    assert [n for n, _ in model.bert.named_parameters(prefix="bert")] == [
        n for n, _ in torch_model.bert.named_parameters(prefix="bert")]

    mlm = mindone_ft.BertForMaskedLM(tiny_config())  # tied decoder: once, under the embedding's name
    names = [n for n, _ in mlm.named_parameters()]
    assert "bert.embeddings.word_embeddings.weight" in names and "cls.predictions.decoder.weight" not in names
    assert "cls.predictions.decoder.weight" in [n for n, _ in mlm.named_parameters(remove_duplicate=False)]
    assert names == list(mlm.named_parameters_hf())
    assert not any("rng_state" in n for n in names)  # Dropout's stream is no parameter in torch


def test_device_dtype_to_and_casts():
    model = _cls_model()
    assert model.device == "CPU" and model.dtype == ms.float32
    assert model.to(model.device) is model and model.to("CPU") is model
    assert model.half() is model and model.dtype == ms.float16
    assert model.float().dtype == ms.float32
    assert model.to(ms.float16).dtype == ms.float16 and model.to(dtype=ms.float32).dtype == ms.float32


def test_requires_grad_freezes_parameters():
    model = _cls_model()
    assert model.bert.requires_grad_(False) is model.bert
    assert [p.name for p in model.trainable_params()] == ["classifier.weight", "classifier.bias"]
    model.requires_grad_()
    assert len(model.trainable_params()) == len(list(model.parameters()))


@pytest.mark.parametrize("name,hint", [
    ("cuda", "mindspore.set_device"), ("cpu", "mindspore.set_device"), ("zero_grad", "value_and_grad"),
    ("forward", "construct"), ("named_modules", "cells_and_names"),
])
def test_torch_only_methods_name_the_mindspore_equivalent(name, hint):
    model = _cls_model()
    assert not hasattr(model, name)
    with pytest.raises(AttributeError, match=f"no attribute '{name}'") as error:
        getattr(model, name)()
    assert hint in str(error.value)
    with pytest.raises(AttributeError, match="no attribute 'not_a_method'"):
        model.not_a_method  # noqa: B018  (other missing attributes keep MindSpore's plain error)


def test_state_dict_and_load_state_dict(pynative):
    torch.manual_seed(0)
    torch_model = transformers.BertForSequenceClassification(tiny_config(num_labels=3)).eval()
    model = _cls_model().eval()
    result = model.load_state_dict(torch_model.state_dict())  # strict; CPU torch tensors are read as arrays
    missing, unexpected = result
    assert missing == [] and unexpected == []
    inputs = tiny_inputs()
    with torch.no_grad():
        expected = torch_model(**to_torch(inputs)).logits.numpy()
    np.testing.assert_allclose(model(**to_ms(inputs)).logits.asnumpy(), expected, atol=1e-5)

    # MindSpore's own `state_dict()` (Parameters, with Dropout streams) round-trips through `load_state_dict`.
    other = _cls_model()
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.classifier.weight.asnumpy(), model.classifier.weight.asnumpy())
    with pytest.raises(ValueError, match="missing keys"):
        other.load_state_dict({"classifier.bias": np.zeros(3, np.float32)})
    assert other.load_state_dict({"classifier.bias": np.zeros(3, np.float32)}, strict=False).missing_keys


# ---------------------------------------------------------------------------------------------- numpy inputs
def test_numpy_inputs_from_a_tokenizer(mode, tokenizer):
    ms.set_seed(0)
    model = mindone_ft.BertForSequenceClassification(
        tiny_config(vocab_size=tokenizer.vocab_size, num_labels=2)).eval()
    encoded = tokenizer(["a fine film", "dull, far too long and badly acted"], return_tensors="np", padding=True)
    assert encoded["input_ids"].dtype == np.int64
    from_numpy = model(**encoded).logits
    expected = model(**{k: ms.Tensor(v.astype(np.int32)) for k, v in encoded.items()}).logits
    np.testing.assert_allclose(from_numpy.asnumpy(), expected.asnumpy(), atol=1e-6)

    labels = np.array([0, 1])  # int64 labels, and a float mask, work too
    output = model(**encoded, labels=labels)
    assert output.loss.shape == () and model.config.problem_type == "single_label_classification"
    mask = encoded["attention_mask"].astype(np.float64)
    np.testing.assert_allclose(model(encoded["input_ids"], mask).logits.asnumpy(), expected.asnumpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------- resizing
def _mlm(**kwargs):
    ms.set_seed(0)
    model = mindone_ft.BertForMaskedLM(tiny_config(**kwargs)).eval()
    bias = np.random.default_rng(0).normal(size=model.cls.predictions.bias.shape).astype(np.float32)
    model.cls.predictions.bias.set_data(ms.Tensor(bias))
    return model


def test_resize_token_embeddings_like_transformers(mode, tmp_path):
    model = _mlm()
    old_vocab = model.config.vocab_size
    old = model.get_input_embeddings().weight.asnumpy().copy()
    old_bias = model.cls.predictions.bias.asnumpy().copy()
    ids = ms.Tensor(np.array([[2, 5, 7, 3]], np.int32))
    before = model(ids).logits.asnumpy()  # compiles a graph for the old size in GRAPH_MODE

    embeddings = model.resize_token_embeddings(old_vocab + 5)
    assert isinstance(embeddings, Embedding) and embeddings is model.get_input_embeddings()
    assert embeddings.weight.shape == (old_vocab + 5, 32) and embeddings.num_embeddings == old_vocab + 5
    assert model.config.vocab_size == old_vocab + 5
    assert model.get_output_embeddings().weight is embeddings.weight  # tied again
    table = embeddings.weight.asnumpy()
    np.testing.assert_array_equal(table[:old_vocab], old)
    np.testing.assert_allclose(table[old_vocab:], np.tile(old.mean(0), (5, 1)), atol=1e-3)  # mean_resizing
    bias = model.cls.predictions.bias.asnumpy()
    np.testing.assert_array_equal(bias[:old_vocab], old_bias)
    np.testing.assert_array_equal(bias[old_vocab:], np.zeros(5))  # as transformers 5.23 leaves them

    after = model(ms.Tensor(np.array([[2, 5, old_vocab + 4, 3]], np.int32))).logits.asnumpy()
    assert after.shape == (1, 4, old_vocab + 5)  # no stale graph of the old size
    np.testing.assert_allclose(model(ids).logits.asnumpy()[..., :old_vocab], before, atol=1e-5)

    # The resized checkpoint loads in transformers with the new size.
    model.save_pretrained(tmp_path / "resized")
    torch_model, info = transformers.BertForMaskedLM.from_pretrained(tmp_path / "resized", output_loading_info=True)
    assert torch_model.config.vocab_size == old_vocab + 5 and not info["mismatched_keys"] and not info["missing_keys"]


def test_resize_options_and_shrinking():
    model = _mlm()
    old = model.get_input_embeddings().weight.asnumpy().copy()
    assert model.resize_token_embeddings() is model.get_input_embeddings()  # nothing asked: unchanged
    assert model.get_input_embeddings().weight.shape[0] == 99
    assert model.resize_token_embeddings(None, pad_to_multiple_of=16).weight.shape[0] == 112
    np.random.seed(0)
    table = model.resize_token_embeddings(200, mean_resizing=False).weight.asnumpy()
    assert abs(table[112:].std() - model.config.initializer_range) < 0.003  # normal(0, initializer_range)
    shrunk = model.resize_token_embeddings(50)
    np.testing.assert_array_equal(shrunk.weight.asnumpy(), old[:50])
    assert model.cls.predictions.bias.shape == (50,) and model.config.vocab_size == 50
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        model.resize_token_embeddings(60, pad_to_multiple_of=0)


def test_resize_untied_output_embeddings():
    model = _mlm(tie_word_embeddings=False)
    decoder = model.get_output_embeddings()
    old = decoder.weight.asnumpy().copy()
    model.resize_token_embeddings(104)
    assert decoder.weight is not model.get_input_embeddings().weight and decoder.weight.shape == (104, 32)
    np.testing.assert_array_equal(decoder.weight.asnumpy()[:99], old)
    np.testing.assert_allclose(decoder.weight.asnumpy()[99:], np.tile(old.mean(0), (5, 1)), atol=1e-3)
    assert model(ms.Tensor(np.array([[1, 103]], np.int32))).logits.shape == (1, 2, 104)


_SMALL = dict(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
              max_position_embeddings=64)
_FAMILY_MLM_CONFIGS = {
    "AlbertForMaskedLM": lambda: transformers.AlbertConfig(embedding_size=16, **_SMALL),
    "DistilBertForMaskedLM": lambda: transformers.DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2,
                                                                   hidden_dim=37, max_position_embeddings=64),
    "RobertaForMaskedLM": lambda: transformers.RobertaConfig(**_SMALL),
    "ElectraForMaskedLM": lambda: transformers.ElectraConfig(embedding_size=16, **_SMALL),
    "MPNetForMaskedLM": lambda: transformers.MPNetConfig(**_SMALL),
    "DebertaV2ForMaskedLM": lambda: transformers.DebertaV2Config(**_SMALL),  # legacy head: decoder + bias
    "DebertaV2ForMaskedLM-v3head": lambda: transformers.DebertaV2Config(legacy=False, **_SMALL),  # bias, no decoder
}


@pytest.mark.parametrize("head", sorted(_FAMILY_MLM_CONFIGS))
def test_resize_token_embeddings_in_every_family(pynative, head):
    """The output projection and the head's vocabulary bias are found generically, whatever the family calls them."""
    model_class = getattr(mindone_ft, head.split("-")[0], None)
    if model_class is None:
        pytest.skip(f"{head} is not in this build")
    model = model_class(_FAMILY_MLM_CONFIGS[head]()).eval()
    model.resize_token_embeddings(53)
    ids = ms.Tensor(np.array([[1, 5, 52, 2]], np.int32))
    assert model(ids, ms.Tensor(np.ones((1, 4), np.int32))).logits.shape == (1, 4, 53)
    assert model.config.vocab_size == 53 and model.get_input_embeddings().weight.shape[0] == 53


# ---------------------------------------------------------------------------------------------- push_to_hub
class FakeHub:
    """Records `HfApi.create_repo` / `HfApi.upload_folder` calls and what the uploaded folder held."""

    def __init__(self, monkeypatch):
        self.calls = []
        hub = self

        def create_repo(api, repo_id, **kwargs):
            hub.calls.append(("create_repo", repo_id, kwargs))
            return types.SimpleNamespace(repo_id=repo_id if "/" in repo_id else f"me/{repo_id}")

        def upload_folder(api, **kwargs):
            files = sorted(os.listdir(kwargs["folder_path"]))
            readme = open(os.path.join(kwargs["folder_path"], "README.md"), encoding="utf-8").read()
            hub.calls.append(("upload_folder", files, kwargs, readme))
            return "commit-info"

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)


def test_model_push_to_hub_uses_huggingface_hub(monkeypatch):
    hub = FakeHub(monkeypatch)
    model = _cls_model()
    assert model.push_to_hub("me/tiny-bert", private=True, token="hf_x", tags=["text-classification"]) == "commit-info"
    (_, repo_id, create_kwargs), (_, files, upload_kwargs, readme) = hub.calls
    assert repo_id == "me/tiny-bert" and create_kwargs == {"token": "hf_x", "private": True, "exist_ok": True}
    assert files == ["README.md", "config.json", "model.safetensors"]
    assert upload_kwargs["repo_id"] == "me/tiny-bert" and upload_kwargs["commit_message"] == "Upload model"
    assert "library_name: transformers" in readme and "- text-classification" in readme


def test_push_to_hub_offline_is_a_clear_error():
    model = _cls_model()  # conftest sets HF_HUB_OFFLINE=1, and there is no network here anyway
    with pytest.raises(OSError, match="push_to_hub could not upload .*'me/tiny-bert'") as error:
        model.push_to_hub("me/tiny-bert")
    assert "save_pretrained" in str(error.value)


def test_trainer_push_to_hub(monkeypatch, tmp_path):
    hub = FakeHub(monkeypatch)
    model = _cls_model()
    args = mindone_ft.TrainingArguments(output_dir=str(tmp_path / "run"), hub_token="hf_y", hub_private_repo=True)
    trainer = mindone_ft.Trainer(model=model, args=args)
    os.makedirs(tmp_path / "run" / "checkpoint-5")
    assert trainer.push_to_hub(tags="demo") == "commit-info"
    (_, repo_id, create_kwargs), (_, files, upload_kwargs, readme) = hub.calls
    assert repo_id == "run" and create_kwargs["token"] == "hf_y" and create_kwargs["private"] is True
    assert upload_kwargs["folder_path"] == args.output_dir and upload_kwargs["commit_message"] == "End of training"
    assert "checkpoint-*" in upload_kwargs["ignore_patterns"] and trainer.hub_model_id == "me/run"
    assert {"README.md", "config.json", "model.safetensors", "training_args.json"} <= set(files)
    assert "- demo" in readme and "learning_rate: 5e-05" in readme


# ---------------------------------------------------------------------------------------------- the docs page
def test_coming_from_transformers_doc_runs(tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/coming_from_transformers.md, in order (question answering on a tiny BERT)."""
    from test_docs import _substitute, python_blocks

    def tiny_qa_model():
        ms.set_seed(0)
        return mindone_ft.BertForQuestionAnswering(
            tiny_config(vocab_size=30522, num_attention_heads=2, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0))

    monkeypatch.chdir(tmp_path)
    code = _substitute("\n".join(python_blocks("coming_from_transformers.md")), [
        ("AutoModelForQuestionAnswering.from_pretrained(model_path)", "tiny_qa_model()"),
        ("select(range(200))", "select(range(32))"),
        ("num_train_epochs=1,", "num_train_epochs=1, disable_tqdm=True,"),
    ])
    namespace = {"tiny_qa_model": tiny_qa_model, "__name__": "coming_from_transformers"}
    exec(compile(code, "docs/coming_from_transformers.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "has no attribute 'cuda'" in printed and "push_to_hub could not upload" in printed
    assert namespace["qa_trainer"].label_names == ["start_positions", "end_positions"]
    assert namespace["start_positions"].shape == (32,) and namespace["mlm"].config.vocab_size % 8 == 0
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "coming_from_transformers.md")) as handle:
        shown = re.findall(r"```text\n(.*?)```", handle.read(), flags=re.S)
    assert shown and shown[-1] in printed  # the untokenized-dataset message the page shows is the real one
