"""Gemma 3 (text) in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what Gemma 3 changes from Llama: embeddings scaled by sqrt(hidden), `(1 + w)` RMSNorms (the
harness perturbs every weight off zero), four norms per layer, q/k norms over an explicit `head_dim` (12, not
32 // 4), `query_pre_attn_scalar` (16) instead of `head_dim` in the scaling, grouped-query attention, `layer_types`
alternating sliding (window 4, shorter than the rows) and full layers with a RoPE of their own each (default with a
local base of 100 for the sliding layers, linear scaling on a base of 1000 for the full ones), final logit
soft-capping at 2 (so the tanh bends the logits), tied embeddings, a pad token that is not 0 and left padding. It also
sets `attn_logit_softcapping`, which transformers 5.23's Gemma 3 ignores: so must we. A second family: only sliding
layers, attention biases, "gelu", untied embeddings, no soft-capping.
"""

import pytest
from transformers import Gemma3TextConfig

import mindone_ft
from model_parity import ModelFamily, ModelParityTests

HEADS = ("Gemma3TextModel", "Gemma3ForCausalLM", "Gemma3TextForSequenceClassification")
INPUTS = ("input_ids", "attention_mask")


def tiny_gemma3_config(**overrides) -> Gemma3TextConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=12,
        query_pre_attn_scalar=16,
        max_position_embeddings=64,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000.0},
        },
        final_logit_softcapping=2.0,
        attn_logit_softcapping=3.0,
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
    )
    values.update(overrides)
    return Gemma3TextConfig(**values)


def tiny_gemma3_config_sliding_only(**overrides) -> Gemma3TextConfig:
    values = dict(num_hidden_layers=2, layer_types=["sliding_attention"] * 2, attention_bias=True,
                  hidden_activation="gelu", tie_word_embeddings=False, final_logit_softcapping=None,
                  attn_logit_softcapping=None)
    values.update(overrides)
    return tiny_gemma3_config(**values)


class TestGemma3Parity(ModelParityTests):
    family = ModelFamily("gemma3_text", tiny_gemma3_config, heads=HEADS, input_names=INPUTS, padding_side="left")


class TestGemma3SlidingOnlyParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    family = ModelFamily("gemma3_text", tiny_gemma3_config_sliding_only, heads=("Gemma3ForCausalLM",),
                         input_names=INPUTS, padding_side="left")


def test_unsupported_options_are_rejected(pynative):
    with pytest.raises(NotImplementedError, match="use_bidirectional_attention"):
        mindone_ft.Gemma3TextModel(tiny_gemma3_config(use_bidirectional_attention=True))


def test_attention_softcapping_is_ignored_with_a_warning(pynative, caplog):
    """As in transformers 5.23, whose Gemma 3 never passes `attn_logit_softcapping` to its attention (the parity
    family above sets it and matches transformers): said once, when the model is built."""
    with caplog.at_level("WARNING"):
        mindone_ft.Gemma3TextModel(tiny_gemma3_config(num_hidden_layers=1, layer_types=["full_attention"]))
    assert "attn_logit_softcapping=3.0 is ignored" in caplog.text
