"""Qwen3 in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what Qwen3 changes: q/k RMSNorm per head over an explicit `head_dim` (12, not 32 // 4), with
grouped-query attention; `layer_types` given explicitly with the sliding layer first (window 4, shorter than the
rows), tied embeddings, a pad token that is not 0 and left padding. A second family turns `attention_bias` on.
"""

from transformers import Qwen3Config

from model_parity import ModelFamily, ModelParityTests

HEADS = (
    "Qwen3Model",
    "Qwen3ForCausalLM",
    "Qwen3ForSequenceClassification",
    "Qwen3ForTokenClassification",
    "Qwen3ForQuestionAnswering",
)


def tiny_qwen3_config(**overrides) -> Qwen3Config:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=12,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        use_sliding_window=True,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    values.update(overrides)
    return Qwen3Config(**values)


class TestQwen3Parity(ModelParityTests):
    family = ModelFamily("qwen3", tiny_qwen3_config, heads=HEADS, input_names=("input_ids", "attention_mask"),
                         seq_length=9, padding_side="left")


class TestQwen3WithAttentionBiasParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    family = ModelFamily("qwen3", lambda **kw: tiny_qwen3_config(attention_bias=True, tie_word_embeddings=False, **kw),
                         heads=("Qwen3ForCausalLM",), input_names=("input_ids", "attention_mask"), seq_length=9,
                         padding_side="left")
