"""ModernBERT in MindSpore against Hugging Face PyTorch (transformers 5.23), through the parity harness.

The tiny config stresses what ModernBERT adds to BERT: 3 layers alternating global and local attention
(`global_attn_every_n_layers=2`: full, sliding, full), a local window (`local_attention=4`, 2 tokens on each side)
much shorter than the 12-token rows, very different rope thetas for global and local layers, a hidden size that is
not a power of two, a pad token that is not 0, and every bias flag off (their default). A second, cheaper family
turns all biases on with `classifier_pooling="mean"`.
"""

import numpy as np
import pytest
import torch
from transformers import ModernBertConfig
from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask

import mindspore as ms
from mindone_ft.modeling_layers import bidirectional_attention_mask
from model_parity import ModelFamily, ModelParityTests

SEQ_LENGTH = 12
HEADS = (
    "ModernBertModel",
    "ModernBertForMaskedLM",
    "ModernBertForSequenceClassification",
    "ModernBertForTokenClassification",
    "ModernBertForQuestionAnswering",
    "ModernBertForMultipleChoice",
)


def tiny_modernbert_config(**overrides) -> ModernBertConfig:
    values = dict(
        vocab_size=99,
        hidden_size=36,  # 3 heads of 12: not a power of two
        intermediate_size=20,
        num_hidden_layers=3,
        num_attention_heads=3,
        max_position_embeddings=64,
        local_attention=4,  # +-2 tokens, shorter than SEQ_LENGTH
        global_attn_every_n_layers=2,
        global_rope_theta=1000.0,
        local_rope_theta=10.0,
        pad_token_id=5,
        bos_token_id=1,
        cls_token_id=1,
        eos_token_id=2,
        sep_token_id=2,
    )
    values.update(overrides)
    return ModernBertConfig(**values)


def tiny_modernbert_config_with_biases(**overrides) -> ModernBertConfig:
    values = dict(norm_bias=True, attention_bias=True, mlp_bias=True, classifier_bias=True, decoder_bias=True,
                  classifier_pooling="mean", classifier_activation="silu", hidden_activation="gelu_pytorch_tanh")
    values.update(overrides)
    return tiny_modernbert_config(**values)


class TestModernBertParity(ModelParityTests):
    family = ModelFamily("modernbert", tiny_modernbert_config, heads=HEADS,
                         input_names=("input_ids", "attention_mask"), seq_length=SEQ_LENGTH)


class TestModernBertWithBiasesMeanPoolingParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    # Single-label classification only: the other label kinds do not depend on the biases or the pooling.
    family = ModelFamily(
        "modernbert", tiny_modernbert_config_with_biases, heads=("ModernBertForSequenceClassification",),
        input_names=("input_ids", "attention_mask"), seq_length=SEQ_LENGTH,
        labels={"ModernBertForSequenceClassification": lambda c, rng, ids: {"labels": rng.integers(0, 2, 3)}},
    )


@pytest.mark.parametrize("with_padding", [True, False])
def test_attention_masks_equal_transformers(with_padding, pynative):
    """The local window (|query - key| <= local_attention // 2) and padding masks, for a sequence three times
    longer than the window, against transformers' eager masks."""
    config = tiny_modernbert_config()
    config._attn_implementation = "eager"
    batch, seq = 3, SEQ_LENGTH
    mask = np.ones((batch, seq), np.int64)
    if with_padding:
        mask[1, 3:] = 0
        mask[2, 7:] = 0
    embeds = torch.zeros(batch, seq, config.hidden_size)
    torch_mask = torch.from_numpy(mask)
    expected = {
        "sliding": create_bidirectional_sliding_window_mask(config, embeds, torch_mask),
        "full": create_bidirectional_mask(config, embeds, torch_mask),
    }
    got = {
        "sliding": bidirectional_attention_mask(ms.Tensor(mask), seq, ms.float32, config.sliding_window),
        "full": bidirectional_attention_mask(ms.Tensor(mask), seq, ms.float32),
    }
    for kind in ("sliding", "full"):
        if expected[kind] is None:  # transformers skips a mask with nothing to mask
            assert kind == "full" and not with_padding
            assert np.all(got[kind].asnumpy() == 0)
            continue
        want = expected[kind].numpy()
        have = np.broadcast_to(got[kind].asnumpy(), want.shape)
        assert np.array_equal(have, want), kind
    window = got["sliding"].asnumpy()[0, 0] == 0
    assert window.sum(axis=1).tolist() == [3, 4] + [5] * (seq - 4) + [4, 3]
