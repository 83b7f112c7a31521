"""BERT in MindSpore against Hugging Face PyTorch: outputs, losses and gradients, in GRAPH and PYNATIVE mode.

Weights travel torch -> MindSpore through `save_pretrained` / `from_pretrained`, so every parity test is also a
checkpoint round-trip test. Most checks use a tiny random config; the real offline checkpoint runs once per mode.
"""

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from mindspore import nn

import mindone_ft
from mindone_ft import BertConfig
from model_parity import ModelFamily, ModelParityTests

ATOL = 1e-5
GRAD_RTOL = 1e-4

# Measured maxima are printed (run with -s) so the report can quote them.
MEASURED = {}


def record(name: str, value: float) -> None:
    MEASURED[name] = max(value, MEASURED.get(name, 0.0))
    print(f"[measured] {name}: {value:.3e}")


def tiny_config(**overrides) -> BertConfig:
    """A tiny random BERT; eager attention in torch so attention probabilities can be compared too."""
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    values.update(overrides)
    config = BertConfig(**values)
    config._attn_implementation = "eager"
    return config


def tiny_inputs(batch: int = 3, seq: int = 9, seed: int = 0):
    """Random ids with real padding (zeros in the mask) and two segments."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, 99, size=(batch, seq)).astype(np.int64)
    attention_mask = np.ones((batch, seq), np.int64)
    attention_mask[1, 6:] = 0
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids = np.zeros((batch, seq), np.int64)
    token_type_ids[:, 5:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def to_torch(arrays: dict) -> dict:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}


def to_ms(arrays: dict) -> dict:
    return {k: ms.Tensor(np.asarray(v)) for k, v in arrays.items()}


def torch_to_ms(torch_model, ms_class, tmp_path, **kwargs):
    """Copies a torch model into MindSpore through the Hugging Face checkpoint format."""
    folder = tmp_path / "torch_checkpoint"
    torch_model.save_pretrained(folder)
    model = ms_class.from_pretrained(folder, **kwargs)
    model.set_train(False)
    return model


def max_abs_diff(ms_value, torch_value) -> float:
    return float(np.max(np.abs(ms_value.asnumpy().astype(np.float64) - torch_value.detach().numpy())))


def assert_outputs_close(ms_out, torch_out, fields, name: str) -> None:
    for field in fields:
        ms_value, torch_value = ms_out[field], torch_out[field]
        if isinstance(torch_value, tuple):
            assert len(ms_value) == len(torch_value), field
            diff = max(max_abs_diff(a, b) for a, b in zip(ms_value, torch_value))
        else:
            diff = max_abs_diff(ms_value, torch_value)
        record(f"{name}.{field}", diff)
        assert diff < ATOL, f"{name}: {field} differs from transformers by {diff}"


@pytest.fixture(params=["cpu_kernels", "portable"])
def kernels(request, monkeypatch):
    """Models built with mindone_ft's fused CPU kernels (the default on CPU) or with MindSpore's own ops only."""
    from mindone_ft.utils import compat

    if request.param == "portable":
        monkeypatch.setattr(compat, "use_cpu_kernels", lambda: False)
    else:
        assert compat.use_cpu_kernels(), "the fused CPU kernels could not be built on this machine"
    return request.param


# --------------------------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------------------------

def tiny_family_config(**overrides) -> BertConfig:
    """The harness's BERT: a hidden size not a power of two, more heads than layers, odd intermediate size."""
    return tiny_config(**overrides)


class TestBertParity(ModelParityTests):
    family = ModelFamily(
        "bert",
        tiny_family_config,
        heads=("BertModel", "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering",
               "BertForMaskedLM", "BertForMultipleChoice", "BertForPreTraining"),
    )


def test_model_without_pooler_matches_transformers(tmp_path):
    config = tiny_config()
    torch_model = transformers.BertModel(config, add_pooling_layer=False).eval()
    ms_model = torch_to_ms(torch_model, mindone_ft.BertModel, tmp_path, add_pooling_layer=False)
    inputs = tiny_inputs()
    with torch.no_grad():
        torch_out = torch_model(**to_torch(inputs))
    ms_out = ms_model(**to_ms(inputs))
    assert list(ms_out.keys()) == list(torch_out.keys()) == ["last_hidden_state"]
    assert_outputs_close(ms_out, torch_out, ["last_hidden_state"], "tiny.base_no_pooler")


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = mindone_ft.BertForMaskedLM(tiny_config())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    untied = mindone_ft.BertForMaskedLM(tiny_config(tie_word_embeddings=False))
    assert untied.cls.predictions.decoder.weight is not untied.bert.embeddings.word_embeddings.weight
    assert "cls.predictions.decoder.weight" in untied.state_dict_numpy()


def test_init_weights_follow_transformers():
    ms.set_seed(0)
    config = tiny_config(vocab_size=500, hidden_size=64, initializer_range=0.05)
    model = mindone_ft.BertForSequenceClassification(config)
    state = model.state_dict_numpy()
    word = state["bert.embeddings.word_embeddings.weight"]
    assert abs(np.delete(word, config.pad_token_id, axis=0).std() - 0.05) < 0.005
    assert np.all(word[config.pad_token_id] == 0)
    assert abs(state["bert.encoder.layer.0.attention.self.query.weight"].std() - 0.05) < 0.005
    assert np.all(state["classifier.bias"] == 0)
    assert np.all(state["bert.encoder.layer.1.output.LayerNorm.weight"] == 1)
    assert np.all(state["bert.encoder.layer.1.output.LayerNorm.bias"] == 0)
    assert np.all(mindone_ft.BertForMaskedLM(config).state_dict_numpy()["cls.predictions.bias"] == 0)


@pytest.mark.parametrize("name", ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "tanh", "quick_gelu"])
def test_activations_match_transformers(name):
    from transformers.activations import ACT2FN as TORCH_ACT2FN

    from mindone_ft.modeling_layers import get_activation

    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    expected = TORCH_ACT2FN[name](torch.from_numpy(x)).numpy()
    got = get_activation(name)(ms.Tensor(x)).asnumpy()
    assert np.max(np.abs(got - expected)) < 1e-6


# --------------------------------------------------------------------------------------------------------------
# Forward parity
# --------------------------------------------------------------------------------------------------------------


def test_real_checkpoint_parity(mode, kernels, model_path, tmp_path):
    """The real pretrained MiniLM with tokenized reviews (padding, sentence pairs) against transformers."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    first = ["A gripping, beautifully shot film.", "Dull and far too long; I left early."]
    second = ["The cast is superb.", "Even the soundtrack could not save it, sadly."]
    encoded = tokenizer(first, second, padding=True, return_tensors="np")
    assert encoded["attention_mask"].min() == 0 and encoded["token_type_ids"].max() == 1
    labels = np.array([2, 0], np.int64)

    torch.manual_seed(0)
    torch_base = transformers.BertModel.from_pretrained(model_path).eval()
    ms_base = mindone_ft.BertModel.from_pretrained(model_path)  # the real folder, no torch in between
    with torch.no_grad():
        torch_out = torch_base(**to_torch(encoded))
    ms_out = ms_base(**to_ms(encoded))
    assert_outputs_close(
        ms_out, torch_out, ["last_hidden_state", "pooler_output"], f"real.BertModel.{mode}.{kernels}"
    )

    torch_cls = transformers.BertForSequenceClassification.from_pretrained(model_path, num_labels=3).eval()
    ms_cls = torch_to_ms(torch_cls, mindone_ft.BertForSequenceClassification, tmp_path)
    with torch.no_grad():
        torch_out = torch_cls(**to_torch(encoded), labels=torch.from_numpy(labels))
    ms_out = ms_cls(**to_ms(encoded), labels=ms.Tensor(labels))
    assert_outputs_close(
        ms_out, torch_out, ["loss", "logits"], f"real.BertForSequenceClassification.{mode}.{kernels}"
    )


# --------------------------------------------------------------------------------------------------------------
# Calling conventions
# --------------------------------------------------------------------------------------------------------------


def test_positional_call_with_bool_mask_and_int32_labels(mode):
    """The tutorial's call: train_model(input_ids, mask_as_bool, None, None, None, None, labels_int32)."""
    model = mindone_ft.BertForSequenceClassification(tiny_config())
    model.set_train(False)
    inputs = tiny_inputs()
    ids = ms.Tensor(inputs["input_ids"])
    reference = model(ids, ms.Tensor(inputs["attention_mask"]), labels=ms.Tensor(np.array([1, 0, 1])))
    # Each dtype combination compiles its own graph; two cover bool/float masks and int32/int64 labels.
    for mask_dtype, label_dtype in ((np.bool_, np.int32), (np.float32, np.int64)):
        mask = ms.Tensor(inputs["attention_mask"].astype(mask_dtype))
        labels = ms.Tensor(np.array([1, 0, 1], label_dtype))
        out = model(ids, mask, None, None, None, None, labels)
        assert np.allclose(out[0].asnumpy(), reference.loss.asnumpy(), atol=1e-6)
        assert np.allclose(out.logits.asnumpy(), reference.logits.asnumpy(), atol=1e-6)
    as_tuple = model(ids, ms.Tensor(inputs["attention_mask"].astype(np.bool_)), None, None, None, None,
                     ms.Tensor(np.array([1, 0, 1], np.int32)), return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2
    assert np.allclose(as_tuple[0].asnumpy(), reference.loss.asnumpy(), atol=1e-6)
    assert model.config.problem_type == "single_label_classification"  # inferred like transformers


class LossCell(nn.Cell):
    """A train-step style wrapper: the nested model's outputs are indexed by position."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def construct(self, input_ids, attention_mask, token_type_ids, labels):
        outputs = self.model(input_ids, attention_mask, token_type_ids, None, None, None, labels)
        return outputs[0]


def test_nested_in_a_cell_returns_loss_first(mode):
    model = mindone_ft.BertForSequenceClassification(tiny_config())
    model.set_train(False)
    inputs = to_ms(tiny_inputs())
    labels = ms.Tensor(np.array([1, 0, 1], np.int32))
    loss = LossCell(model)(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"], labels)
    expected = model(**inputs, labels=labels).loss
    assert loss.shape == () and np.allclose(loss.asnumpy(), expected.asnumpy(), atol=1e-6)


def test_dropout_only_in_training(mode):
    model = mindone_ft.BertModel(tiny_config(hidden_dropout_prob=0.3))
    inputs = to_ms(tiny_inputs())
    model.set_train(False)
    first, second = model(**inputs).last_hidden_state, model(**inputs).last_hidden_state
    assert np.array_equal(first.asnumpy(), second.asnumpy())
    model.set_train(True)
    trained = model(**inputs).last_hidden_state
    assert not np.allclose(trained.asnumpy(), first.asnumpy())


def test_head_mask(mode):
    config = tiny_config()
    model = mindone_ft.BertModel(config)
    model.set_train(False)
    inputs = to_ms(tiny_inputs())
    plain = model(**inputs, output_attentions=True)
    ones = model(**inputs, head_mask=ms.Tensor(np.ones((config.num_attention_heads,), np.float32)))
    assert np.allclose(plain.last_hidden_state.asnumpy(), ones.last_hidden_state.asnumpy(), atol=1e-6)
    head_mask = np.ones((config.num_hidden_layers, config.num_attention_heads), np.float32)
    head_mask[0, 1] = 0
    masked = model(**inputs, head_mask=ms.Tensor(head_mask), output_attentions=True)
    assert np.all(masked.attentions[0].asnumpy()[:, 1] == 0)
    assert np.allclose(masked.attentions[0].asnumpy()[:, 0], plain.attentions[0].asnumpy()[:, 0])
    assert not np.allclose(masked.last_hidden_state.asnumpy(), plain.last_hidden_state.asnumpy())


def test_inputs_embeds_equals_input_ids():
    model = mindone_ft.BertModel(tiny_config())
    model.set_train(False)
    inputs = to_ms(tiny_inputs())
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    from_ids = model(**inputs).last_hidden_state
    from_embeds = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"],
                        token_type_ids=inputs["token_type_ids"]).last_hidden_state
    assert np.allclose(from_ids.asnumpy(), from_embeds.asnumpy(), atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("class_name,labels", [
    ("BertForSequenceClassification", {"labels": np.array([1, 0, 1])}),
    ("BertForMaskedLM", {"labels": np.where(np.arange(27).reshape(3, 9) % 3 == 0, 7, -100)}),
])
def test_gradients_match_transformers(class_name, labels, mode, kernels, tmp_path):
    """d(loss)/d(every parameter) against torch autograd, dropout off; tied MLM weights get both contributions."""
    config = tiny_config()
    torch.manual_seed(3)
    torch_model = getattr(transformers, class_name)(config).eval()
    ms_model = torch_to_ms(torch_model, getattr(mindone_ft, class_name), tmp_path)
    inputs = tiny_inputs()

    torch_model.zero_grad()
    torch_model(**to_torch(inputs), **to_torch(labels)).loss.backward()
    torch_grads = {name: p.grad.numpy() for name, p in torch_model.named_parameters() if p.grad is not None}

    ms_inputs = to_ms(inputs)
    ms_labels = ms.Tensor(labels["labels"])
    loss_cell = LossCell(ms_model)
    weights = ms_model.trainable_params()
    grad_fn = ms.value_and_grad(loss_cell, None, weights)
    _, grads = grad_fn(ms_inputs["input_ids"], ms_inputs["attention_mask"], ms_inputs["token_type_ids"], ms_labels)

    # Wrapping renames MindSpore parameters ("model.bert..."); the Hugging Face names come from the model itself.
    hf_names = {id(param): name for name, param in ms_model.named_parameters_hf().items()}
    assert sorted(hf_names[id(p)] for p in weights) == sorted(torch_grads)
    worst = 0.0
    for param, grad in zip(weights, grads):
        name = hf_names[id(param)]
        expected = torch_grads[name]
        # The floor matters for the attention key bias: its exact gradient is 0 (softmax is shift invariant),
        # so both frameworks return float noise there.
        error = np.linalg.norm(grad.asnumpy() - expected) / max(np.linalg.norm(expected), 1e-6)
        worst = max(worst, error)
        assert error < GRAD_RTOL, f"{name}: relative gradient error {error}"
    record(f"grad.{class_name}.{mode}.{kernels}", worst)
