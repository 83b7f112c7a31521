"""Mistral in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what Mistral changes from Llama: a sliding window (4 tokens) much shorter than the 11-token
rows in every layer; plus grouped-query attention (a single key/value head shared by all 4 query heads), an explicit
`head_dim` (12, not 32 // 4), a pad token that is not 0 and left padding.
"""

from transformers import MistralConfig

from model_parity import ModelFamily, ModelParityTests

HEADS = (
    "MistralModel",
    "MistralForCausalLM",
    "MistralForSequenceClassification",
    "MistralForTokenClassification",
    "MistralForQuestionAnswering",
)


def tiny_mistral_config(**overrides) -> MistralConfig:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,  # multi-query attention
        head_dim=12,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        sliding_window=4,
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
    )
    values.update(overrides)
    return MistralConfig(**values)


class TestMistralParity(ModelParityTests):
    family = ModelFamily("mistral", tiny_mistral_config, heads=HEADS, input_names=("input_ids", "attention_mask"),
                         seq_length=11, padding_side="left")
