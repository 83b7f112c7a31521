"""Qwen2 in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what Qwen2 changes from Llama: biases on q/k/v and none on the output projection, and
`layer_types` mixing a full-attention layer with a sliding-window one (`use_sliding_window`, `max_window_layers=1`)
whose window of 3 tokens is shorter than the rows; plus grouped-query attention, tied embeddings (as the small Qwen2.5
models), a pad token that is not 0 and left padding.
"""

from transformers import Qwen2Config

from model_parity import ModelFamily, ModelParityTests

HEADS = (
    "Qwen2Model",
    "Qwen2ForCausalLM",
    "Qwen2ForSequenceClassification",
    "Qwen2ForTokenClassification",
    "Qwen2ForQuestionAnswering",
)


def tiny_qwen2_config(**overrides) -> Qwen2Config:
    values = dict(
        vocab_size=99,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": 1000.0},
        use_sliding_window=True,
        sliding_window=3,
        max_window_layers=1,  # layer 0 full attention, layer 1 sliding
        pad_token_id=5,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    values.update(overrides)
    return Qwen2Config(**values)


def test_tiny_config_mixes_layer_types():
    assert tiny_qwen2_config().layer_types == ["full_attention", "sliding_attention"]


class TestQwen2Parity(ModelParityTests):
    family = ModelFamily("qwen2", tiny_qwen2_config, heads=HEADS, input_names=("input_ids", "attention_mask"),
                         seq_length=9, padding_side="left")
