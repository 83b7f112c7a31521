"""GPT-2 in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what GPT-2 has of its own: learned positions (0..len-1 also on the left-padded rows, as
transformers' forward), `token_type_ids` looked up in the token embedding, the fused `c_attn` projection in
transformers' Conv1D layout (weights `(in, out)`: the harness checks names, shapes and the bit-identical PyTorch
reload), an MLP width (`n_inner`) that is not 4 x hidden, "gelu_new", embeddings tied to `lm_head`, and a pad token
set so that the sequence classifier can find each row's last token. A second family scales the scores by the inverse
layer index, upcasts and reorders the attention (`reorder_and_upcast_attn`), unties the embeddings and uses "gelu".
"""

import numpy as np
import pytest
import torch
import transformers
from transformers import GPT2Config

import mindone_ft
from model_parity import ModelFamily, ModelParityTests, perturbed_torch_model

HEADS = (
    "GPT2Model",
    "GPT2LMHeadModel",
    "GPT2ForSequenceClassification",
    "GPT2ForTokenClassification",
    "GPT2ForQuestionAnswering",
)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def tiny_gpt2_config(**overrides) -> GPT2Config:
    values = dict(
        vocab_size=99,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_inner=37,
        n_positions=64,
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
    )
    values.update(overrides)
    return GPT2Config(**values)


def tiny_gpt2_config_scaled(**overrides) -> GPT2Config:
    values = dict(scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True, tie_word_embeddings=False,
                  activation_function="gelu")
    values.update(overrides)
    return tiny_gpt2_config(**values)


class TestGPT2Parity(ModelParityTests):
    family = ModelFamily("gpt2", tiny_gpt2_config, heads=HEADS, input_names=INPUTS, padding_side="left")


class TestGPT2ScaledUntiedParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    family = ModelFamily("gpt2", tiny_gpt2_config_scaled, heads=("GPT2LMHeadModel",), input_names=INPUTS,
                         padding_side="left")


def test_float16_upcast_attention_matches_transformers(pynative, tmp_path):
    """`reorder_and_upcast_attn` in a float16 model: scores and softmax in float32, as transformers does. The query
    and key weights are scaled up so that the scores (~1e5) overflow float16: computed in float16 they would be inf
    and the probabilities NaN; upcast, the logits agree with transformers' float16 ones to float16 precision."""
    config = tiny_gpt2_config_scaled(n_layer=1)
    config._attn_implementation = "eager"
    torch_model = perturbed_torch_model(TestGPT2Parity.family, "GPT2LMHeadModel", config)
    with torch.no_grad():
        torch_model.transformer.h[0].attn.c_attn.weight[:, : 2 * config.n_embd] *= 1000.0
    torch_model.save_pretrained(tmp_path)
    model = mindone_ft.GPT2LMHeadModel.from_pretrained(tmp_path, dtype="float16")
    ids = np.random.default_rng(0).integers(6, 99, (2, 9))
    with torch.no_grad():
        expected = torch_model.half()(input_ids=torch.from_numpy(ids), output_attentions=True)
    got = model(input_ids=ids, output_attentions=True)
    assert got.attentions[0].dtype == model.dtype  # the probabilities come back in the model dtype
    reference = expected.logits.float().numpy()
    diff = np.abs(got.logits.asnumpy().astype(np.float32) - reference).max()
    print(f"[measured] gpt2.float16.upcast.logits: {diff:.2e} (scale {np.abs(reference).max():.1f})")
    assert diff < 1e-2


def test_sequence_classification_needs_a_pad_token_for_batches(pynative):
    model = mindone_ft.GPT2ForSequenceClassification(tiny_gpt2_config(pad_token_id=None, num_labels=2))
    assert model(input_ids=np.ones((1, 4), np.int64)).logits.shape == (1, 2)
    with pytest.raises(ValueError, match="no padding token"):
        model(input_ids=np.ones((2, 4), np.int64))


def test_unsupported_options_are_rejected(pynative):
    with pytest.raises(NotImplementedError, match="add_cross_attention"):
        mindone_ft.GPT2Model(tiny_gpt2_config(add_cross_attention=True))
    model = mindone_ft.GPT2LMHeadModel(tiny_gpt2_config())
    ids = np.ones((1, 3), np.int64)
    with pytest.raises(TypeError, match="DynamicCache"):
        model(input_ids=ids, past_key_values=object())
    with pytest.raises(NotImplementedError, match="cross-attention"):
        model(input_ids=ids, encoder_hidden_states=np.zeros((1, 3, 32), np.float32))


def test_init_scales_the_residual_projections(pynative):
    """transformers' GPT-2 init: std 0.02 for the projections, 0.02 / sqrt(2 * n_layer) for every `c_proj`."""
    config = tiny_gpt2_config(n_layer=2, n_embd=64, n_inner=256)
    params = mindone_ft.GPT2Model(config).state_dict_numpy()
    assert abs(params["h.0.attn.c_attn.weight"].std() - 0.02) < 2e-3
    for name in ("h.1.attn.c_proj.weight", "h.1.mlp.c_proj.weight"):
        assert abs(params[name].std() - 0.02 / 2) < 1e-3, name
    assert not params["h.0.mlp.c_fc.bias"].any() and np.all(params["ln_f.weight"] == 1)
    assert params["h.0.attn.c_attn.weight"].shape == (64, 3 * 64)  # Conv1D: (in, out)


def test_loads_hub_style_checkpoints_with_mask_buffers(pynative, tmp_path):
    """A bare-model checkpoint (no `transformer.` prefix, as the Hub's gpt2) that still carries the causal-mask
    buffers older transformers versions saved (`attn.bias`, `attn.masked_bias`) loads into the LM head like
    transformers loads it: buffers ignored without a warning, `lm_head` tied to `wte`."""
    from safetensors.numpy import save_file

    config = tiny_gpt2_config()
    torch_model = perturbed_torch_model(TestGPT2Parity.family, "GPT2Model", config)
    state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
    for i in range(config.n_layer):
        state[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 64, 64), np.float32))
        state[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
    config.save_pretrained(tmp_path)
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    model, info = mindone_ft.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    expected_model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = np.random.default_rng(0).integers(6, 99, (2, 7))
    with torch.no_grad():
        expected = expected_model(input_ids=torch.from_numpy(ids)).logits.numpy()
    assert np.abs(model(input_ids=ids).logits.asnumpy() - expected).max() < 1e-5
