"""Llama in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what a decoder adds: grouped-query attention (4 query heads sharing 2 key/value heads), an
explicit `head_dim` (12) different from `hidden_size // num_attention_heads` (8), Llama 3 RoPE scaling with all three
frequency bands present, untied embeddings, a pad token that is not 0, and left-padded rows (row 1 is mostly
padding, so its first queries see no token at all). A second family turns the bias flags on and ties the
embeddings. Each other `rope_type` (linear, dynamic, yarn) is compared on its own; dynamic NTK with rows longer than
`max_position_embeddings`, where its frequencies change with the length.
"""

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from transformers import LlamaConfig

import mindone_ft
from model_parity import ATOL, ModelFamily, ModelParityTests, make_inputs, perturbed_torch_model, to_ms, to_torch

SEQ_LENGTH = 9
HEADS = (
    "LlamaModel",
    "LlamaForCausalLM",
    "LlamaForSequenceClassification",
    "LlamaForTokenClassification",
    "LlamaForQuestionAnswering",
)
# rope_theta 10000 and 6 frequencies (head_dim 12): wavelengths 6.3 ... 13,000 tokens, so with an original context
# of 256 the Llama 3 rule keeps some (< 64), divides some (> 256) and interpolates the one in between.
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 256}
ROPE_VARIANTS = {
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 3.0},
    # YaRN ramps between the correction dimensions 1 and 4 of 6 here (original context 2048), so both ends and
    # the ramp are used; the second case takes its attention factor from mscale / mscale_all_dim.
    "yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 2048},
    "yarn_mscale": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                    "original_max_position_embeddings": 2048, "mscale": 0.8, "mscale_all_dim": 0.5,
                    "truncate": False},
    "llama3": LLAMA3_ROPE,
}


def tiny_llama_config(**overrides) -> LlamaConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention: 2 query heads per key/value head
        head_dim=12,  # != hidden_size // num_attention_heads
        max_position_embeddings=8192,
        rope_parameters=dict(LLAMA3_ROPE),
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    values.update(overrides)
    return LlamaConfig(**values)


def tiny_llama_config_with_biases(**overrides) -> LlamaConfig:
    values = dict(attention_bias=True, mlp_bias=True, tie_word_embeddings=True, hidden_act="gelu_pytorch_tanh",
                  rope_parameters={"rope_type": "default", "rope_theta": 100.0})
    values.update(overrides)
    return tiny_llama_config(**values)


class TestLlamaParity(ModelParityTests):
    family = ModelFamily("llama", tiny_llama_config, heads=HEADS, input_names=("input_ids", "attention_mask"),
                         seq_length=SEQ_LENGTH, padding_side="left")


class TestLlamaWithBiasesTiedParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    family = ModelFamily("llama", tiny_llama_config_with_biases, heads=("LlamaForCausalLM",),
                         input_names=("input_ids", "attention_mask"), seq_length=SEQ_LENGTH, padding_side="left")


def _torch_and_ms(config, head, tmp_path):
    config._attn_implementation = "eager"
    family = TestLlamaParity.family
    torch_model = perturbed_torch_model(family, head, config)
    torch_model.save_pretrained(tmp_path / "checkpoint")
    return torch_model, getattr(mindone_ft, head).from_pretrained(tmp_path / "checkpoint")


@pytest.mark.parametrize("variant", sorted(ROPE_VARIANTS))
def test_rope_variants_match_transformers(variant, mode, tmp_path):
    """Logits and hidden states of every rope_type against transformers, on left-padded rows. Dynamic NTK runs on
    rows longer than `max_position_embeddings` (its frequencies are those of the current length)."""
    max_positions = 8 if variant == "dynamic" else 8192
    seq_length = 13 if variant == "dynamic" else SEQ_LENGTH
    config = tiny_llama_config(rope_parameters=dict(ROPE_VARIANTS[variant]), max_position_embeddings=max_positions,
                               num_hidden_layers=1)
    torch_model, ms_model = _torch_and_ms(config, "LlamaForCausalLM", tmp_path)
    family = ModelFamily("llama", tiny_llama_config, heads=(), input_names=("input_ids", "attention_mask"),
                         seq_length=seq_length, padding_side="left")
    inputs = make_inputs(family, config, "LlamaForCausalLM")
    with torch.no_grad():
        expected = torch_model(**to_torch(inputs), output_hidden_states=True)
    got = ms_model(**to_ms(inputs), output_hidden_states=True)
    valid = inputs["attention_mask"].astype(bool)
    for name in ("logits", "hidden_states"):
        pairs = zip(got[name], expected[name]) if name == "hidden_states" else [(got[name], expected[name])]
        diff = max(np.abs(a.asnumpy()[valid] - b.numpy()[valid]).max() for a, b in pairs)
        print(f"[measured] llama.rope.{variant}.{mode}.{name}: {diff:.2e}")
        assert diff < ATOL, (variant, name, diff)


def test_dynamic_rope_follows_the_positions(graph_mode, tmp_path):
    """Given position ids decide the dynamic NTK length (max position + 1), within one compiled graph shape."""
    config = tiny_llama_config(rope_parameters=dict(ROPE_VARIANTS["dynamic"]), max_position_embeddings=8,
                               num_hidden_layers=1)
    torch_model, ms_model = _torch_and_ms(config, "LlamaModel", tmp_path)
    ids = np.random.default_rng(0).integers(6, 99, (2, 6))
    for offset in (0, 10):  # positions 0..5 (no scaling) and 10..15 (scaled for 16 tokens)
        positions = np.broadcast_to(np.arange(offset, offset + 6), (2, 6)).copy()
        inputs = {"input_ids": ids, "position_ids": positions}
        with torch.no_grad():
            expected = transformers.LlamaModel.from_pretrained(tmp_path / "checkpoint")(**to_torch(inputs))
        got = ms_model(**to_ms(inputs))
        diff = np.abs(got.last_hidden_state.asnumpy() - expected.last_hidden_state.numpy()).max()
        assert diff < ATOL, (offset, diff)


def test_causal_lm_options_match_transformers(pynative, tmp_path):
    """`logits_to_keep` (int and positions), all-ignored rows, and packed sequences (restarting position ids, no
    attention mask), against transformers."""
    config = tiny_llama_config()
    torch_model, ms_model = _torch_and_ms(config, "LlamaForCausalLM", tmp_path)
    rng = np.random.default_rng(0)
    ids = rng.integers(6, 99, (2, 8))
    labels = ids.copy()
    labels[1] = -100
    for keep in (1, 3, np.array([0, 4, 7])):
        with torch.no_grad():
            expected = torch_model(input_ids=torch.from_numpy(ids),
                                   logits_to_keep=torch.from_numpy(keep) if isinstance(keep, np.ndarray) else keep)
        got = ms_model(input_ids=ids, logits_to_keep=ms.Tensor(keep) if isinstance(keep, np.ndarray) else keep)
        assert got.logits.shape == tuple(expected.logits.shape)
        assert np.abs(got.logits.asnumpy() - expected.logits.numpy()).max() < ATOL
    # Packed sequences: transformers looks for them only without a cache (use_cache=False).
    packed = np.array([[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7]])
    for use_cache in (False, None):
        inputs = {"input_ids": ids, "position_ids": packed, "labels": labels}
        with torch.no_grad():
            expected = torch_model(**to_torch(inputs), use_cache=use_cache)
        got = ms_model(**to_ms(inputs), use_cache=use_cache)
        assert np.abs(got.logits.asnumpy() - expected.logits.numpy()).max() < ATOL, use_cache
        assert abs(float(got.loss.asnumpy()) - float(expected.loss)) < ATOL, use_cache


def test_sequence_classification_pools_the_last_real_token_left_or_right(pynative, tmp_path):
    config = tiny_llama_config(num_labels=3)
    torch_model, ms_model = _torch_and_ms(config, "LlamaForSequenceClassification", tmp_path)
    ids = np.random.default_rng(0).integers(6, 99, (2, 7))
    ids[0, :3] = config.pad_token_id  # left padding
    ids[1, 5:] = config.pad_token_id  # right padding
    mask = (ids != config.pad_token_id).astype(np.int64)
    with torch.no_grad():
        expected = torch_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    got = ms_model(input_ids=ids, attention_mask=mask)
    assert np.abs(got.logits.asnumpy() - expected.logits.numpy()).max() < ATOL


def test_unsupported_options_are_rejected(pynative):
    with pytest.raises(NotImplementedError, match="longrope"):
        mindone_ft.LlamaModel(tiny_llama_config(rope_parameters={
            "rope_type": "longrope", "rope_theta": 10000.0, "short_factor": [1.0] * 6, "long_factor": [2.0] * 6,
            "original_max_position_embeddings": 4096}))
    model = mindone_ft.LlamaModel(tiny_llama_config())
    with pytest.raises(TypeError, match="DynamicCache"):
        model(input_ids=np.ones((1, 3), np.int64), past_key_values=object())
