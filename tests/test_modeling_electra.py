"""ELECTRA against Hugging Face PyTorch: the parity harness (tests/model_parity.py) plus ELECTRA's own pieces."""

import numpy as np
import pytest
import torch
import transformers
from transformers import ElectraConfig

import mindone_ft
from model_parity import ModelFamily, ModelParityTests, make_inputs, perturbed_torch_model, to_ms, to_torch


def tiny_electra_config(**overrides) -> ElectraConfig:
    """A tiny ELECTRA whose embeddings (16) are narrower than its encoder (32), so `embeddings_project` is there,
    and whose `hidden_act` (gelu_new) differs from the GELU that the generator and classification heads hard-code,
    so a head using the wrong activation shows."""
    values = dict(
        vocab_size=99,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_act="gelu_new",
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    values.update(overrides)
    return ElectraConfig(**values)


def replaced_token_labels(config, rng, input_ids):
    """ELECTRA's discriminator targets: 1 where the generator replaced the token, 0 where it is the original."""
    return {"labels": rng.integers(0, 2, input_ids.shape)}


FAMILY = ModelFamily(
    "electra",
    tiny_electra_config,
    heads=("ElectraModel", "ElectraForPreTraining", "ElectraForMaskedLM", "ElectraForSequenceClassification",
           "ElectraForTokenClassification", "ElectraForQuestionAnswering", "ElectraForMultipleChoice"),
    labels={"ElectraForPreTraining": replaced_token_labels},
)


class TestElectraParity(ModelParityTests):
    family = FAMILY


def _torch_and_ms(head: str, config, tmp_path):
    torch_model = perturbed_torch_model(FAMILY, head, config)
    torch_model.save_pretrained(tmp_path / "torch_checkpoint")
    return torch_model, getattr(mindone_ft, head).from_pretrained(tmp_path / "torch_checkpoint")


def test_embeddings_project_only_when_sizes_differ():
    equal = tiny_electra_config(embedding_size=32)
    ms_keys = set(mindone_ft.ElectraModel(equal).state_dict_numpy())
    torch_keys = set(transformers.ElectraModel(equal).state_dict())
    assert ms_keys == torch_keys and not any(k.startswith("embeddings_project.") for k in ms_keys)
    narrow = mindone_ft.ElectraModel(tiny_electra_config()).state_dict_numpy()
    assert narrow["embeddings_project.weight"].shape == (32, 16)
    assert narrow["embeddings.word_embeddings.weight"].shape == (99, 16)


def test_generator_lm_head_is_tied_to_word_embeddings():
    model = mindone_ft.ElectraForMaskedLM(tiny_electra_config())
    assert model.generator_lm_head.weight is model.electra.embeddings.word_embeddings.weight
    assert "generator_lm_head.weight" not in model.state_dict_numpy()
    assert "generator_lm_head.bias" in model.state_dict_numpy()
    untied = mindone_ft.ElectraForMaskedLM(tiny_electra_config(tie_word_embeddings=False))
    assert untied.generator_lm_head.weight is not untied.electra.embeddings.word_embeddings.weight
    assert "generator_lm_head.weight" in untied.state_dict_numpy()


def test_decoder_configs_are_rejected():
    with pytest.raises(ValueError, match="is_decoder=False"):
        mindone_ft.ElectraModel(tiny_electra_config(is_decoder=True))


def test_discriminator_loss_without_mask_and_with_bool_mask(pynative, tmp_path):
    """The harness always passes an int mask; transformers also takes no mask (every token counts) or a bool one."""
    config = tiny_electra_config()
    torch_model, ms_model = _torch_and_ms("ElectraForPreTraining", config, tmp_path)
    inputs = make_inputs(FAMILY, config, "ElectraForPreTraining")
    labels = replaced_token_labels(config, np.random.default_rng(1), inputs["input_ids"])
    for mask in (None, inputs["attention_mask"].astype(bool)):
        arrays = dict(inputs, **labels)
        arrays.pop("attention_mask")
        if mask is not None:
            arrays["attention_mask"] = mask
        with torch.no_grad():
            expected = torch_model(**to_torch(arrays)).loss.item()
        assert abs(ms_model(**to_ms(arrays)).loss.asnumpy().item() - expected) < 1e-5


@pytest.mark.parametrize("summary_type", ["last", "mean"])
def test_multiple_choice_summary_types(summary_type, pynative, tmp_path):
    """The config's other `summary_type`s (the harness covers the default, "first")."""
    config = tiny_electra_config(summary_type=summary_type)
    torch_model, ms_model = _torch_and_ms("ElectraForMultipleChoice", config, tmp_path)
    inputs = make_inputs(FAMILY, config, "ElectraForMultipleChoice")
    with torch.no_grad():
        expected = torch_model(**to_torch(inputs)).logits.numpy()
    assert np.max(np.abs(ms_model(**to_ms(inputs)).logits.asnumpy() - expected)) < 1e-5
